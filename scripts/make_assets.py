#!/usr/bin/env python3
"""Copies a handful of real Speech Commands clips into assets/clips/ and builds
assets/demo_words.wav (clips joined by background noise) for examples and tests.

Clips come from speakers of the *test* part of the salted speaker split used to train
the bundled model (`spikeword train --split-rule salted`), so no example was seen in
training. Source: Google Speech Commands (Warden 2018), CC-BY-4.0.
Run from the crate root: python3 scripts/make_assets.py
"""
import os, shutil, wave, struct, random
from gsc_split import salted_split

SRC = "../shared/data/speech_commands"
WORDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]


def read(path):
    with wave.open(path) as w:
        assert w.getframerate() == 16000 and w.getsampwidth() == 2 and w.getnchannels() == 1
        return list(struct.unpack("<%dh" % w.getnframes(), w.readframes(w.getnframes())))

def write(path, x):
    with wave.open(path, "wb") as w:
        w.setnchannels(1); w.setsampwidth(2); w.setframerate(16000)
        w.writeframes(struct.pack("<%dh" % len(x), *[max(-32768, min(32767, int(v))) for v in x]))

os.makedirs("assets/clips", exist_ok=True)
lines = ["# Example clips", "", "Real clips of Google Speech Commands v0.02 (Warden 2018, CC-BY-4.0,",
         "https://arxiv.org/abs/1804.03209), copied unchanged from held-out (test-split) speakers.", "",
         "| file | original |", "|---|---|"]
chosen = []
for w in WORDS:
    names = sorted(n for n in os.listdir(os.path.join(SRC, w)) if salted_split(n) == "test")
    n = names[len(names) // 2]
    dst = f"assets/clips/{w}_0.wav"
    shutil.copyfile(os.path.join(SRC, w, n), dst)
    chosen.append((w, dst))
    lines.append(f"| {os.path.basename(dst)} | {w}/{n} |")
noise_names = sorted(n for n in os.listdir(os.path.join(SRC, "_background_noise_")) if salted_split(n) == "test")
noise = read(os.path.join(SRC, "_background_noise_", noise_names[0]))
lines.append(f"| (noise in demo_words.wav) | _background_noise_/{noise_names[0]} |")
# demo_words.wav: 1 s noise, then yes/no/up/stop/go each followed by 1 s of noise.
random.seed(1)
out = []
def gap():
    return [v * 0.3 for v in noise[:16000]]
out += gap()
order = ["yes", "no", "up", "stop", "go"]
for w in order:
    out += read(f"assets/clips/{w}_0.wav")
    out += gap()
write("assets/demo_words.wav", out)
lines += ["", "`demo_words.wav` = noise (x0.3), then " + ", ".join(order) + " clips above, each followed by 1 s of that noise.", ""]
open("assets/clips/README.md", "w").write("\n".join(lines))
print("\n".join(lines))
