#!/usr/bin/env node
// speak.mjs: a command-line wrapper around @echogarden/gnuspeech-wasm 0.3.0, the GnuSpeech
// articulatory synthesizer (GPL-3.0). It runs as a separate tool and is not linked into the Rust crate.
//
//   node scripts/gnuspeech/speak.mjs --text "yes" --out /tmp/x.wav [--preset male]
//        [--tract-length CM] [--pitch=SEMITONES | --pitch 120hz] [--tempo F]
//   (write a negative pitch as --pitch=-12: node's parser reads "--pitch -12" as two options)
//   node scripts/gnuspeech/speak.mjs --list-presets
//
// Output: mono 16-bit PCM WAV at 44100 Hz, peak-normalised by GnuSpeech. Intonation is randomised,
// so repeated runs give slightly different audio.
// Preset defaults (tract cm / pitch semitones / nominal F0): male 17.5/-12/104 Hz, female 15/0/208 Hz,
// large_child 12.5/2.5/240 Hz, small_child 10/5/277 Hz, baby 7.5/7.5/320 Hz.
// The package's own synthesize() only takes voice/tempo/controlRate, so this script drives
// the bundled WASM module directly and edits the config files in its in-memory FS
// (/data/en/voice_<preset>.txt and trm_control_model.txt) before each synthesis.

import { parseArgs } from 'node:util'
import { writeFileSync } from 'node:fs'
import initGnuSpeech from '@echogarden/gnuspeech-wasm/wasm/gnuspeech.js'

const DATA = '/data/en'
const PITCH_OFFSET = -4 // pitch_offset in trm_control_model.txt (semitones, added to the voice's pitch)
const LIMITS = { tractLength: [5, 25], pitch: [-24, 24], tempo: [0.25, 4] } // range checked in testing

function fail(msg) {
  console.error(`speak.mjs: error: ${msg}`)
  process.exit(2)
}

// Parse a number option and check that it lies in [lo, hi].
function num(name, value, [lo, hi]) {
  const x = Number(value)
  if (value === '' || !Number.isFinite(x)) fail(`--${name} must be a number, got "${value}"`)
  if (x < lo || x > hi) fail(`--${name} ${x} is outside ${lo}..${hi}`)
  return x
}

const hzOf = (st) => 220 * 2 ** ((st + PITCH_OFFSET + 3) / 12) // nominal mean F0 for a pitch in semitones

// "--pitch" is the voice's reference_glottal_pitch in semitones (0 = the female preset).
// A value ending in "hz" is converted so that the nominal mean F0
// (220 * 2^((pitch + PITCH_OFFSET + 3) / 12) Hz, as in GnuSpeech's Tube.cpp) equals that frequency.
// Intonation then moves the actual F0 around this mean.
function parsePitch(value) {
  const hz = /^\s*([0-9.]+)\s*hz\s*$/i.exec(value)
  if (!hz) return num('pitch', value, LIMITS.pitch)
  const st = 12 * Math.log2(Number(hz[1]) / 220) - 3 - PITCH_OFFSET
  if (!(st >= LIMITS.pitch[0] && st <= LIMITS.pitch[1])) {
    fail(`--pitch ${value} is outside ${hzOf(LIMITS.pitch[0]).toFixed(0)}..${hzOf(LIMITS.pitch[1]).toFixed(0)} Hz`)
  }
  return st
}

// Replace "key = value" in a GnuSpeech config text, making sure the key exists.
function setKey(text, key, value) {
  const re = new RegExp(`^${key}\\s*=.*$`, 'm')
  if (!re.test(text)) throw new Error(`config key ${key} not found`)
  return text.replace(re, `${key} = ${value}`)
}

async function main() {
  let args
  try {
    args = parseArgs({
      strict: true,
      options: {
        text: { type: 'string' }, out: { type: 'string' }, preset: { type: 'string', default: 'male' },
        'tract-length': { type: 'string' }, pitch: { type: 'string' }, tempo: { type: 'string' },
        'list-presets': { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
      },
    }).values
  } catch (e) {
    fail(e.message.split('\n')[0])
  }
  if (args.help) {
    console.log('usage: speak.mjs --text TEXT --out FILE.wav [--preset NAME] [--tract-length CM] ' +
      '[--pitch=SEMITONES|--pitch HZhz] [--tempo F] | --list-presets')
    return
  }

  // Check the numbers before loading the WASM module.
  const tract = args['tract-length'] !== undefined ? num('tract-length', args['tract-length'], LIMITS.tractLength) : undefined
  const pitch = args.pitch !== undefined ? parsePitch(args.pitch) : undefined
  const tempo = args.tempo !== undefined ? num('tempo', args.tempo, LIMITS.tempo) : 1.0
  if (!args['list-presets']) {
    if (!args.text || !args.text.trim()) fail('--text is required and must not be empty')
    if (!args.out) fail('--out is required')
  }

  // Load the module; send anything it prints to stderr so stdout stays clean.
  const m = await initGnuSpeech({ print: (s) => console.error(s), printErr: (s) => console.error(s) })
  const presets = m.FS.readdir(DATA)
    .map((f) => /^voice_(.+)\.txt$/.exec(f)?.[1]).filter(Boolean).sort()
  if (args['list-presets']) {
    console.log(presets.join('\n'))
    return
  }
  if (!presets.includes(args.preset)) fail(`unknown preset "${args.preset}" (have: ${presets.join(', ')})`)

  // Write the edited voice and control-model files into the module's in-memory FS.
  const read = (f) => m.FS.readFile(`${DATA}/${f}`, { encoding: 'utf8' })
  let voice = read(`voice_${args.preset}.txt`)
  if (tract !== undefined) voice = setKey(voice, 'vocal_tract_length', tract)
  if (pitch !== undefined) voice = setKey(voice, 'reference_glottal_pitch', pitch.toFixed(3))
  m.FS.writeFile(`${DATA}/voice_${args.preset}.txt`, voice)
  let control = read('trm_control_model.txt')
  control = setKey(control, 'voice_name', args.preset)
  control = setKey(control, 'tempo', tempo)
  m.FS.writeFile(`${DATA}/trm_control_model.txt`, control)

  // Pass C strings on the WASM heap to GnuSpeech_synthesizeToFile(text, wavPath, configDir, paramPath, debug).
  const cstr = (s) => {
    const bytes = new TextEncoder().encode(s + '\0')
    const ptr = m._malloc(bytes.length)
    m.HEAPU8.set(bytes, ptr)
    return ptr
  }
  const ptrs = [args.text, '/tmp/out.wav', DATA, '/tmp/out-params.txt'].map(cstr)
  try {
    m._GnuSpeech_synthesizeToFile(...ptrs, 0)
  } catch (e) {
    // A thrown C++ exception reaches JS as a bare number (a pointer); its message is not available.
    if (typeof e === 'number') throw new Error('GnuSpeech raised an internal error (no pronounceable words in the text?)')
    throw e
  } finally {
    ptrs.forEach((p) => m._free(p))
  }
  let wav
  try {
    wav = m.FS.readFile('/tmp/out.wav')
  } catch {
    throw new Error('synthesizer produced no output')
  }
  if (wav.length <= 44) throw new Error('synthesizer produced an empty WAV')
  writeFileSync(args.out, wav)
}

main().catch((e) => {
  console.error(`speak.mjs: error: synthesis failed: ${e?.message ?? e}`)
  process.exit(1)
})
