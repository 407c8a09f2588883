//! Synthetic speech for training: spoken words from the text-to-speech engines
//! Debian ships (espeak-ng, flite, festival) and GnuSpeech (an articulatory
//! synthesizer, run by node from `scripts/gnuspeech`), written in the Speech Commands
//! layout so that `Dataset::scan` reads them like the real archive.
//!
//! Each clip is `<out>/<word>/<speaker>_nohash_<n>.wav`, 16 kHz mono, exactly 1 s,
//! with the word trimmed of its silence, sped up or slowed down by a random factor
//! (0.9–1.1), set to a random peak level and centred. `<speaker>` names the engine
//! and voice (`espeak-en-us-m3`, `flite-slt`, `festival-kal`), so the speaker hash
//! split keeps every voice inside one split. Speed and pitch vary between clips of
//! the same voice, as they do between takes of one person.
//!
//! The engines are external programs run directly (never through a shell); an
//! engine that is not installed is skipped and reported, and a word an engine fails
//! on is skipped with a warning. The output is deterministic for a given seed, but
//! for GnuSpeech, whose intonation is drawn anew on every run.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::audio::change_speed;
use crate::audio::wav::write_pcm16;
use crate::util::Rng;

/// Sample rate and length of every clip written (the Speech Commands format).
pub const SAMPLE_RATE: u32 = 16_000;
pub const CLIP_LEN: usize = 16_000;

/// The engines `synthesize` knows, under the names `SynthOptions::engines` takes.
pub const ENGINES: [&str; 4] = ["espeak", "flite", "festival", "gnuspeech"];

/// The ten Speech Commands keywords plus ten of its auxiliary ("unknown") words.
pub const DEFAULT_WORDS: [&str; 20] = [
    "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "bed", "bird", "cat",
    "dog", "happy", "house", "marvin", "sheila", "tree", "wow",
];

/// English accents of espeak-ng used as base voices (those its `--voices=en` lists
/// without an mbrola database), and the voice variants combined with each.
const ESPEAK_ACCENTS: [&str; 10] = [
    "en-us",
    "en-gb",
    "en-gb-scotland",
    "en-029",
    "en-gb-x-rp",
    "en-us-nyc",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    // Names older espeak releases use for the same accents.
    "en-sc",
    "en-rp",
];
const ESPEAK_VARIANTS: [&str; 11] = [
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4",
];

/// Typical mean F0 (Hz) of flite's voices, the centre of the pitch range drawn.
const FLITE_F0: [(&str, f32); 5] = [
    ("kal", 105.0),
    ("kal16", 105.0),
    ("awb", 110.0),
    ("rms", 105.0),
    ("slt", 170.0),
];

/// GnuSpeech's adult and older-child presets with their nominal mean F0 (Hz) and vocal
/// tract length (cm); each is voiced with its own tract and ones 8 % shorter and longer:
/// new speakers.
const GNUSPEECH_PRESETS: [(&str, f32, f32); 3] = [
    ("male", 104.0, 17.5),
    ("female", 208.0, 15.0),
    ("large_child", 240.0, 12.5),
];
const GNUSPEECH_TRACT_SCALES: [f32; 3] = [0.92, 1.0, 1.08];

/// A process that runs longer than this is killed and its word skipped.
const TOOL_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct SynthOptions {
    /// Words to speak; each becomes a folder (its label).
    pub words: Vec<String>,
    /// Root of the Speech Commands-style output.
    pub out: PathBuf,
    /// Clips per word per engine.
    pub variants: usize,
    pub seed: u64,
    /// Any of [`ENGINES`] ("espeak-ng" is accepted for "espeak").
    pub engines: Vec<String>,
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct SynthReport {
    /// Clips written, per engine.
    pub clips: BTreeMap<String, usize>,
    /// Speaker ids (voices) that produced at least one clip, per engine.
    pub speakers: BTreeMap<String, Vec<String>>,
    /// Engines asked for that are not installed or have no usable voice.
    pub missing: Vec<String>,
    /// Renders that failed and were skipped (each also printed as a warning).
    pub failed: usize,
}

impl SynthReport {
    pub fn total(&self) -> usize {
        self.clips.values().sum()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Engine {
    Espeak,
    Flite,
    Festival,
    GnuSpeech,
}

impl Engine {
    fn parse(s: &str) -> Option<Engine> {
        match s.trim().to_ascii_lowercase().as_str() {
            "espeak" | "espeak-ng" => Some(Engine::Espeak),
            "flite" => Some(Engine::Flite),
            "festival" | "text2wave" => Some(Engine::Festival),
            "gnuspeech" => Some(Engine::GnuSpeech),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Engine::Espeak => "espeak",
            Engine::Flite => "flite",
            Engine::Festival => "festival",
            Engine::GnuSpeech => "gnuspeech",
        }
    }
}

/// One voice of one engine: the program, what selects the voice, and its speaker id.
#[derive(Debug, Clone)]
struct Voice {
    engine: Engine,
    program: String,
    /// espeak: `-v` value; flite: `-voice` value; festival: the name in `(voice_NAME)`;
    /// gnuspeech: the preset.
    select: String,
    speaker: String,
    /// flite and gnuspeech: mean F0 around which the pitch is drawn.
    f0: Option<f32>,
    /// gnuspeech: the vocal tract's length (cm).
    tract_cm: Option<f32>,
}

/// Writes `opts.variants` clips of every word with every installed engine.
pub fn synthesize(opts: &SynthOptions) -> Result<SynthReport> {
    if opts.variants == 0 {
        bail!("--variants must be at least 1");
    }
    let words = clean_words(&opts.words)?;
    let engines = parse_engines(&opts.engines)?;
    std::fs::create_dir_all(&opts.out)?;
    let tmp = TempDir::new()?;
    let mut report = SynthReport::default();
    for engine in engines {
        let Some(voices) = usable_voices(engine) else {
            report.missing.push(engine.name().to_string());
            continue;
        };
        let started = Instant::now();
        let mut run = EngineRun::new(engine, voices, opts, &tmp.0);
        for word in &words {
            run.speak(word)?;
        }
        run.used.sort();
        eprintln!(
            "{}: {} clips from {} voices in {:.1} s",
            engine.name(),
            run.written,
            run.used.len(),
            started.elapsed().as_secs_f64()
        );
        report.failed += run.failed;
        report.clips.insert(engine.name().to_string(), run.written);
        report.speakers.insert(engine.name().to_string(), run.used);
    }
    Ok(report)
}

/// A text and a recording of it.
pub type Spoken = (String, Vec<f32>);

/// Running speech: each text spoken by `voices` voices of every engine asked for (a
/// seeded choice; engines that are not installed are skipped with a warning), trimmed of
/// silence, at a random peak level, at any length. Returns the recordings with their
/// texts, and the engines found missing.
pub fn speak_texts(
    texts: &[&str],
    engines: &[String],
    voices: usize,
    seed: u64,
) -> Result<(Vec<Spoken>, Vec<String>)> {
    let tmp = TempDir::new()?;
    let (mut out, mut missing) = (Vec::new(), Vec::new());
    for engine in parse_engines(engines)? {
        let Some(mut found) = usable_voices(engine) else {
            missing.push(engine.name().to_string());
            continue;
        };
        let mut rng = Rng::new(seed ^ fnv1a(engine.name()));
        rng.shuffle(&mut found);
        for (i, text) in texts.iter().enumerate() {
            for k in 0..voices.min(found.len()) {
                let voice = &found[(i + k) % found.len()];
                let prosody = (rng.uniform(), rng.uniform());
                let peak = 10f32.powf(rng.range(-12.0, -3.0) / 20.0);
                match render(voice, text, prosody, &tmp.0).map(|x| trim_silence(&x)) {
                    Ok(Some(mut x)) => {
                        let max = x.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
                        x.iter_mut().for_each(|v| *v *= peak / max);
                        out.push((text.to_string(), x));
                    }
                    Ok(None) => eprintln!("warning: {}: no speech for {text:?}", voice.speaker),
                    Err(e) => eprintln!("warning: {} on {text:?}: {e}", voice.speaker),
                }
            }
        }
    }
    Ok((out, missing))
}

/// The words trimmed and lowercased, blanks dropped, each once; odd characters refused.
fn clean_words(given: &[String]) -> Result<Vec<String>> {
    let mut words: Vec<String> = Vec::new();
    for w in given {
        let w = w.trim().to_lowercase();
        if w.is_empty() {
            continue;
        }
        if !valid_word(&w) {
            bail!("word {w:?}: use letters, digits, apostrophes and inner spaces or hyphens only");
        }
        if !words.contains(&w) {
            words.push(w);
        }
    }
    if words.is_empty() {
        bail!("no words to synthesize");
    }
    Ok(words)
}

/// The engines named, each once, in the order given.
fn parse_engines(given: &[String]) -> Result<Vec<Engine>> {
    let mut engines: Vec<Engine> = Vec::new();
    for e in given {
        if e.trim().is_empty() {
            continue;
        }
        let Some(engine) = Engine::parse(e) else {
            bail!("unknown TTS engine {e:?} (known: {})", ENGINES.join(", "));
        };
        if !engines.contains(&engine) {
            engines.push(engine);
        }
    }
    if engines.is_empty() {
        bail!("no TTS engines given (known: {})", ENGINES.join(", "));
    }
    Ok(engines)
}

/// The engine's voices, or `None` (with a warning) when it is missing or has none.
fn usable_voices(engine: Engine) -> Option<Vec<Voice>> {
    match discover(engine) {
        Ok(v) if !v.is_empty() => Some(v),
        Ok(_) => {
            eprintln!(
                "warning: {}: installed but no usable voice found, skipped",
                engine.name()
            );
            None
        }
        Err(e) => {
            eprintln!("warning: {}: {e}, skipped", engine.name());
            None
        }
    }
}

/// One engine's pass over the words: its voices, and what they have done so far.
struct EngineRun<'a> {
    engine: Engine,
    voices: Vec<Voice>,
    opts: &'a SynthOptions,
    tmp: &'a Path,
    /// Clips written, and the speakers that wrote at least one.
    written: usize,
    used: Vec<String>,
    /// Renders that failed.
    failed: usize,
    /// Words each speaker failed on where others did not.
    failures: HashMap<String, usize>,
    /// The next file number per (word, speaker).
    counters: HashMap<(String, String), usize>,
}

impl<'a> EngineRun<'a> {
    fn new(engine: Engine, voices: Vec<Voice>, opts: &'a SynthOptions, tmp: &'a Path) -> Self {
        EngineRun {
            engine,
            voices,
            opts,
            tmp,
            written: 0,
            used: Vec::new(),
            failed: 0,
            failures: HashMap::new(),
            counters: HashMap::new(),
        }
    }

    /// Writes `opts.variants` clips of `word`, each from the next voice of a shuffled
    /// order, skipping voices that fail.
    fn speak(&mut self, word: &str) -> Result<()> {
        let name = self.engine.name();
        let mut rng = Rng::new(self.opts.seed ^ fnv1a(&format!("{name}/{word}")));
        let mut order: Vec<usize> = (0..self.voices.len()).collect();
        rng.shuffle(&mut order);
        let max_attempts = self.opts.variants + self.voices.len();
        let (mut done, mut attempt) = (0, 0);
        let mut failed_here: Vec<String> = Vec::new();
        while done < self.opts.variants && attempt < max_attempts {
            // Three voices failing before any succeeds: the word is the problem.
            if done == 0 && failed_here.len() >= 3.min(self.voices.len()) {
                break;
            }
            let voice = &self.voices[order[attempt % order.len()]];
            attempt += 1;
            if self.failures.get(&voice.speaker).copied().unwrap_or(0) >= 2
                || failed_here.contains(&voice.speaker)
            {
                continue;
            }
            match render_variant(voice, word, &mut rng, self.tmp) {
                Ok(clip) => {
                    let speaker = voice.speaker.clone();
                    self.save(word, speaker, &clip)?;
                    done += 1;
                }
                Err(e) => {
                    eprintln!("warning: {name} {} on {word:?}: {e}", voice.speaker);
                    failed_here.push(voice.speaker.clone());
                    self.failed += 1;
                }
            }
        }
        // A voice that failed where others did not is charged; one that fails on
        // two words is dropped for the rest of the run.
        if done > 0 {
            for sp in failed_here {
                *self.failures.entry(sp).or_insert(0) += 1;
            }
        }
        if done < self.opts.variants {
            eprintln!(
                "warning: {name} wrote {done} of {} clips of {word:?}",
                self.opts.variants
            );
        }
        Ok(())
    }

    /// Writes the clip as `<out>/<word>/<speaker>_nohash_<n>.wav`.
    fn save(&mut self, word: &str, speaker: String, clip: &[f32]) -> Result<()> {
        let n = self
            .counters
            .entry((word.to_string(), speaker.clone()))
            .or_insert(0);
        let dir = self.opts.out.join(word.replace(' ', "_"));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{speaker}_nohash_{n}.wav"));
        *n += 1;
        write_pcm16(&path, clip, SAMPLE_RATE)?;
        self.written += 1;
        if !self.used.contains(&speaker) {
            self.used.push(speaker);
        }
        Ok(())
    }
}

/// Draws one clip's prosody, speed and level, then renders and finishes it.
fn render_variant(
    voice: &Voice,
    word: &str,
    rng: &mut Rng,
    tmp: &Path,
) -> Result<Vec<f32>, String> {
    // Every attempt draws the same number of values, so a failure does not
    // shift the parameters of the clips after it.
    let prosody = (rng.uniform(), rng.uniform());
    let speed = rng.range(0.9, 1.1);
    let peak_db = rng.range(-12.0, -1.0);
    render(voice, word, prosody, tmp).and_then(|x| {
        finish_clip(&x, speed, 10f32.powf(peak_db / 20.0))
            .ok_or_else(|| "no speech in the output".to_string())
    })
}

fn valid_word(w: &str) -> bool {
    let first_ok = w.chars().next().is_some_and(|c| c.is_alphanumeric());
    let last_ok = w.chars().last().is_some_and(|c| c.is_alphanumeric());
    first_ok
        && last_ok
        && w.len() <= 64
        && w.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '\'' | ' ' | '-'))
}

/// Lowercase, `[a-z0-9]` runs joined by single hyphens (never "_nohash_").
fn safe_id(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars().flat_map(|c| c.to_lowercase()) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}

fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

// ---------------------------------------------------------------------------
// Engines: which voices exist, and one render.

fn discover(engine: Engine) -> Result<Vec<Voice>, String> {
    match engine {
        Engine::Espeak => discover_espeak(),
        Engine::Flite => discover_flite(),
        Engine::Festival => discover_festival(),
        Engine::GnuSpeech => discover_gnuspeech(),
    }
}

/// Whitespace columns of `espeak-ng --voices=...` rows (header skipped).
fn espeak_rows(program: &str, filter: &str) -> Result<Vec<Vec<String>>, String> {
    let out = run_tool(
        Command::new(program).arg(format!("--voices={filter}")),
        None,
        TOOL_TIMEOUT,
    )?;
    if !out.status.success() {
        return Err(format!(
            "`{program} --voices={filter}` failed: {}",
            first_line(&out.stderr)
        ));
    }
    Ok(out
        .stdout
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect())
}

fn discover_espeak() -> Result<Vec<Voice>, String> {
    let mut last_err = String::new();
    for program in ["espeak-ng", "espeak"] {
        let rows = match espeak_rows(program, "en") {
            Ok(r) => r,
            Err(e) => {
                if last_err.is_empty() {
                    last_err = e;
                }
                continue;
            }
        };
        // Columns: Pty Language Age/Gender VoiceName File [Other languages].
        let mut accents: Vec<&str> = Vec::new();
        for acc in ESPEAK_ACCENTS {
            let listed = rows.iter().any(|r| {
                r.len() >= 5 && r[1] == acc && !r[4].starts_with("mb/") && !r[4].starts_with("mb-")
            });
            if listed && !accents.contains(&acc) {
                accents.push(acc);
            }
        }
        let variant_rows = espeak_rows(program, "variant").unwrap_or_default();
        let variants: Vec<&str> = ESPEAK_VARIANTS
            .iter()
            .copied()
            .filter(|v| {
                variant_rows
                    .iter()
                    .any(|r| r.len() >= 5 && r[4].rsplit('/').next() == Some(*v))
            })
            .collect();
        let mut voices = Vec::new();
        for acc in &accents {
            if variants.is_empty() {
                voices.push(Voice {
                    engine: Engine::Espeak,
                    program: program.into(),
                    select: acc.to_string(),
                    speaker: safe_id(&format!("espeak-{acc}")),
                    f0: None,
                    tract_cm: None,
                });
            }
            for var in &variants {
                voices.push(Voice {
                    engine: Engine::Espeak,
                    program: program.into(),
                    select: format!("{acc}+{var}"),
                    speaker: safe_id(&format!("espeak-{acc}-{var}")),
                    f0: None,
                    tract_cm: None,
                });
            }
        }
        return Ok(voices);
    }
    Err(not_installed("espeak-ng", &last_err))
}

fn discover_flite() -> Result<Vec<Voice>, String> {
    let out = run_tool(Command::new("flite").arg("-lv"), None, TOOL_TIMEOUT)
        .map_err(|e| not_installed("flite", &e))?;
    // "Voices available: kal awb_time kal16 awb rms slt"
    let text = format!("{}{}", out.stdout, out.stderr);
    let listed: Vec<String> = text
        .split_once(':')
        .map(|(_, v)| v.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    let mut voices = Vec::new();
    for name in &listed {
        // awb_time is a talking clock (limited domain); kal (8 kHz) is kal16's voice.
        if name.ends_with("_time") || (name == "kal" && listed.iter().any(|n| n == "kal16")) {
            continue;
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            continue;
        }
        let person = if name == "kal16" {
            "kal"
        } else {
            name.as_str()
        };
        voices.push(Voice {
            engine: Engine::Flite,
            program: "flite".into(),
            select: name.clone(),
            speaker: safe_id(&format!("flite-{person}")),
            f0: FLITE_F0.iter().find(|(n, _)| n == name).map(|&(_, f)| f),
            tract_cm: None,
        });
    }
    Ok(voices)
}

fn discover_festival() -> Result<Vec<Voice>, String> {
    // text2wave is the renderer; festival itself lists the voices.
    run_tool(Command::new("text2wave").arg("-h"), None, TOOL_TIMEOUT)
        .map_err(|e| not_installed("text2wave (festival)", &e))?;
    let out = run_tool(
        Command::new("festival").arg("--pipe"),
        Some(b"(print (voice.list))\n"),
        TOOL_TIMEOUT,
    )
    .map_err(|e| not_installed("festival", &e))?;
    // "(cmu_us_slt_arctic_hts ked_diphone kal_diphone)"
    let list = out
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with('('))
        .unwrap_or("");
    let mut voices = Vec::new();
    for name in list
        .trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .split_whitespace()
    {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let short = name
            .trim_end_matches("_diphone")
            .trim_start_matches("cmu_us_")
            .replace("_arctic", "");
        voices.push(Voice {
            engine: Engine::Festival,
            program: "text2wave".into(),
            select: name.into(),
            speaker: safe_id(&format!("festival-{short}")),
            f0: None,
            tract_cm: None,
        });
    }
    Ok(voices)
}

/// The GnuSpeech script: `SPIKEWORD_GNUSPEECH`, else `scripts/gnuspeech/speak.mjs` here,
/// else in the source tree this program was built from.
fn gnuspeech_script() -> PathBuf {
    if let Some(p) = std::env::var_os("SPIKEWORD_GNUSPEECH") {
        return PathBuf::from(p);
    }
    let here = Path::new("scripts/gnuspeech/speak.mjs");
    if here.is_file() {
        return here.to_path_buf();
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join(here)
}

fn discover_gnuspeech() -> Result<Vec<Voice>, String> {
    let script = gnuspeech_script();
    if !script.is_file() {
        return Err(format!(
            "no script at {} (set SPIKEWORD_GNUSPEECH)",
            script.display()
        ));
    }
    let out = run_tool(
        Command::new("node").arg(&script).arg("--list-presets"),
        None,
        TOOL_TIMEOUT,
    )
    .map_err(|e| not_installed("node", &e))?;
    if !out.status.success() {
        return Err(format!(
            "`node {} --list-presets` failed ({}); run `npm ci` in scripts/gnuspeech",
            script.display(),
            first_line(&out.stderr)
        ));
    }
    let listed: Vec<&str> = out.stdout.lines().map(str::trim).collect();
    let mut voices = Vec::new();
    for (preset, f0, cm) in GNUSPEECH_PRESETS {
        if !listed.contains(&preset) {
            continue;
        }
        for scale in GNUSPEECH_TRACT_SCALES {
            let tract = cm * scale;
            voices.push(Voice {
                engine: Engine::GnuSpeech,
                program: "node".into(),
                select: preset.to_string(),
                speaker: safe_id(&format!("gnuspeech-{preset}-{:.0}mm", tract * 10.0)),
                f0: Some(f0),
                tract_cm: Some(tract),
            });
        }
    }
    Ok(voices)
}

fn not_installed(what: &str, err: &str) -> String {
    format!("{what} not usable ({err}); install it with scripts/tts_packages.txt")
}

/// Speaks `word` with `voice` and returns it as mono 16 kHz samples. `prosody` holds
/// two uniforms in [0, 1) for the engine's rate and pitch.
fn render(voice: &Voice, word: &str, prosody: (f32, f32), tmp: &Path) -> Result<Vec<f32>, String> {
    let wav = tmp.join(format!("{}.wav", voice.speaker));
    let _ = std::fs::remove_file(&wav);
    let mut cmd = engine_command(voice, word, prosody, &wav, tmp)?;
    let out = run_tool(&mut cmd, None, TOOL_TIMEOUT)?;
    // These programs often exit 0 on errors (festival's SIOD errors, for one): the
    // output file is what counts.
    if !out.status.success() || !wav.is_file() {
        let why = first_line(&out.stderr);
        return Err(if out.status.success() {
            format!("no output ({why})")
        } else {
            format!("{} ({why})", out.status)
        });
    }
    let x = crate::load_wav(&wav, SAMPLE_RATE).map_err(|e| format!("reading its WAV: {e}"));
    let _ = std::fs::remove_file(&wav);
    x
}

/// The engine's command line that speaks `word` into `wav` (festival reads its text
/// from a file in `tmp`).
fn engine_command(
    voice: &Voice,
    word: &str,
    prosody: (f32, f32),
    wav: &Path,
    tmp: &Path,
) -> Result<Command, String> {
    let (u_rate, u_pitch) = prosody;
    let mut cmd = Command::new(&voice.program);
    match voice.engine {
        Engine::Espeak => {
            let speed = 120 + (u_rate * 81.0) as u32; // words per minute, 120..=200
            let pitch = 30 + (u_pitch * 41.0) as u32; // 0-99 scale, 30..=70
            cmd.args([
                "-v",
                &voice.select,
                "-s",
                &speed.to_string(),
                "-p",
                &pitch.to_string(),
                "-w",
            ])
            .arg(wav)
            .arg(word);
        }
        Engine::Flite => {
            let stretch = 0.85 + 0.35 * u_rate;
            cmd.args([
                "-voice",
                &voice.select,
                "--setf",
                &format!("duration_stretch={stretch:.3}"),
            ]);
            if let Some(f0) = voice.f0 {
                cmd.args([
                    "--setf",
                    &format!("int_f0_target_mean={:.1}", f0 * (0.85 + 0.3 * u_pitch)),
                ]);
            }
            cmd.args(["-t", word, "-o"]).arg(wav);
        }
        Engine::Festival => {
            let text = tmp.join(format!("{}.txt", voice.speaker));
            std::fs::write(&text, format!("{word}\n")).map_err(|e| format!("temp file: {e}"))?;
            let stretch = 0.85 + 0.35 * u_rate;
            cmd.arg("-o").arg(wav);
            cmd.args([
                "-eval",
                &format!("(voice_{})", voice.select),
                "-eval",
                &format!("(Parameter.set 'Duration_Stretch {stretch:.3})"),
            ]);
            cmd.arg(&text);
        }
        Engine::GnuSpeech => {
            let tempo = 0.8 + 0.4 * u_rate;
            let f0 = voice.f0.unwrap_or(150.0) * (0.85 + 0.3 * u_pitch);
            cmd.arg(gnuspeech_script());
            cmd.args(["--text", word, "--preset", &voice.select]);
            if let Some(cm) = voice.tract_cm {
                cmd.args(["--tract-length", &format!("{cm:.2}")]);
            }
            cmd.args([
                &format!("--pitch={f0:.1}hz"),
                &format!("--tempo={tempo:.3}"),
                "--out",
            ])
            .arg(wav);
        }
    }
    Ok(cmd)
}

/// Trims the silence around the word, applies the speed factor (shrinking it if
/// the word would not fit), scales to `peak` and centres it in [`CLIP_LEN`] samples.
fn finish_clip(x: &[f32], speed: f32, peak: f32) -> Option<Vec<f32>> {
    let word = trim_silence(x)?;
    if word.len() < (SAMPLE_RATE as usize) / 20 {
        return None; // under 50 ms: not a word
    }
    let room = CLIP_LEN - 2 * 160; // keep 10 ms of silence either side
    let factor = speed.max(word.len() as f32 / room as f32);
    let n = ((word.len() as f32 / factor) as usize).min(room);
    let mut y = change_speed(&word, factor, n);
    let max = y.iter().fold(0f32, |m, v| m.max(v.abs()));
    if max <= 0.0 {
        return None;
    }
    let gain = peak / max;
    y.iter_mut().for_each(|v| *v *= gain);
    let mut clip = vec![0f32; CLIP_LEN];
    let start = (CLIP_LEN - y.len()) / 2;
    clip[start..start + y.len()].copy_from_slice(&y);
    Some(clip)
}

/// The span from the first to the last 10 ms frame within 40 dB of the loudest,
/// plus 30 ms either side, with 5 ms fades; `None` when it is all silence.
fn trim_silence(x: &[f32]) -> Option<Vec<f32>> {
    const FRAME: usize = 160;
    const MARGIN: usize = 3;
    let rms: Vec<f32> = x
        .chunks(FRAME)
        .map(|c| (c.iter().map(|v| v * v).sum::<f32>() / c.len() as f32).sqrt())
        .collect();
    let loudest = rms.iter().fold(0f32, |m, &r| m.max(r));
    // `loudest` is finite (samples are checked on decoding): compare directly.
    if loudest <= 1e-3 {
        return None;
    }
    let threshold = (loudest * 0.01).max(1e-4);
    let first = rms.iter().position(|&r| r > threshold)?;
    let last = rms.iter().rposition(|&r| r > threshold)?;
    let start = first.saturating_sub(MARGIN) * FRAME;
    let end = ((last + 1 + MARGIN) * FRAME).min(x.len());
    let mut y = x[start..end].to_vec();
    let fade = 80.min(y.len() / 2);
    let n = y.len();
    for i in 0..fade {
        let g = i as f32 / fade as f32;
        y[i] *= g;
        y[n - 1 - i] *= g;
    }
    Some(y)
}

// ---------------------------------------------------------------------------
// Processes and temporary files.

struct ToolOutput {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs `cmd` (no shell) with `stdin` fed to it, capturing both outputs, and kills
/// it after `timeout`. Errors are one line.
fn run_tool(
    cmd: &mut Command,
    stdin: Option<&[u8]>,
    timeout: Duration,
) -> Result<ToolOutput, String> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cmd
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                format!("`{program}` not found")
            } else {
                format!("`{program}`: {e}")
            }
        })?;
    if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let _ = pipe.write_all(bytes);
    }
    let pump = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut s);
            }
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out_t = pump(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err_t = pump(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if started.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "`{program}` timed out after {} s",
                    timeout.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(format!("`{program}`: {e}")),
        }
    };
    Ok(ToolOutput {
        status,
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    })
}

fn first_line(s: &str) -> String {
    let l = s
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no message");
    l.chars().take(200).collect()
}

/// A private folder under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    /// A fresh folder per call: two syntheses in one process (threads) must not share
    /// one, or the first to finish deletes the other's files.
    fn new() -> std::io::Result<TempDir> {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("spikeword-synth-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p)?;
        Ok(TempDir(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_filesystem_safe() {
        assert_eq!(safe_id("espeak-en-us+m3"), "espeak-en-us-m3");
        assert_eq!(safe_id("festival-slt_hts"), "festival-slt-hts");
        assert!(!safe_id("a_nohash_b").contains('_'));
    }

    #[test]
    fn clips_are_one_second_centred_and_scaled() {
        let mut x = vec![0f32; 30_000];
        for (i, v) in x[10_000..14_000].iter_mut().enumerate() {
            *v = 0.5 * (i as f32 * 0.1).sin();
        }
        let clip = finish_clip(&x, 1.0, 0.5).unwrap();
        assert_eq!(clip.len(), CLIP_LEN);
        let peak = clip.iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!((peak - 0.5).abs() < 1e-3);
        let first = clip.iter().position(|v| v.abs() > 1e-3).unwrap();
        let last = clip.iter().rposition(|v| v.abs() > 1e-3).unwrap();
        assert!((first as i64 - (CLIP_LEN - 1 - last) as i64).abs() < 200);
        assert!(finish_clip(&vec![0f32; 16_000], 1.0, 0.5).is_none());
    }
}
