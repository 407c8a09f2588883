#!/usr/bin/env python3
"""Keyword detection in a stream of held-out speech: every test (or validation) clip of the
bundled model's salted split, keywords and other words alike, in random order, each
followed by 1 s of background noise, in one recording; `spikeword detect --json` runs
over it at several thresholds. Reports keywords found with the right word, events with a
wrong keyword, and other words (the `_unknown_` class) that set off any event.

    python3 scripts/stream_detection.py [--split test|val] [--model M ...] [--thresholds 0.4,0.5,0.6]
"""
import argparse, json, os, random, subprocess, tempfile, wave
import numpy as np
from gsc_split import KEYWORDS, read_clip, salted_split

p = argparse.ArgumentParser()
p.add_argument("--bin", default="target/release/spikeword")
p.add_argument("--gsc", default=os.environ.get("SPIKEWORD_DATA", "../shared/data/speech_commands"))
p.add_argument("--split", default="test", choices=["test", "val"])
p.add_argument("--model", action="append", default=None)
p.add_argument("--thresholds", default="0.4,0.5,0.6")
a = p.parse_args()


items = []
for w in sorted(os.listdir(a.gsc)):
    d = os.path.join(a.gsc, w)
    if os.path.isdir(d) and not w.startswith("_"):
        items += [(w if w in KEYWORDS else None, os.path.join(d, n))
                  for n in sorted(os.listdir(d)) if salted_split(n) == a.split]
random.Random(1).shuffle(items)
noise_dir = os.path.join(a.gsc, "_background_noise_")
noise = read_clip(os.path.join(noise_dir, sorted(os.listdir(noise_dir))[0])) * 0.3
stream, truth, t = [noise], [], 1.0
for w, f in items:
    stream += [read_clip(f), noise]
    truth.append((w, t, t + 1.0))
    t += 2.0
path = os.path.join(tempfile.mkdtemp(), "stream.wav")
with wave.open(path, "wb") as wf:
    wf.setnchannels(1); wf.setsampwidth(2); wf.setframerate(16000)
    wf.writeframes((np.clip(np.concatenate(stream), -1, 1) * 32767).astype("<i2").tobytes())

n_key = sum(1 for w, _, _ in truth if w)
n_other = len(truth) - n_key
print(f"{len(truth)} clips ({n_key} keywords, {n_other} other words) of the {a.split} speakers in {t:.0f} s")
print("| model | threshold | keywords found | wrong keyword | other words firing | events |")
print("|---|---|---|---|---|---|")
for model in a.model or ["models/gsc12.safetensors"]:
    for th in a.thresholds.split(","):
        out = subprocess.run([a.bin, "detect", "--json", "--model", model, "--threshold", th, path],
                             capture_output=True, text=True, check=True).stdout
        events = [json.loads(l) for l in out.splitlines()]
        found = wrong = other = 0
        for w, s, e in truth:
            near = [ev for ev in events if ev["start"] < e and ev["end"] > s]
            if w:
                found += any(ev["word"] == w for ev in near)
                wrong += any(ev["word"] != w for ev in near)
            else:
                other += bool(near)
        print(f"| {os.path.basename(model)} | {th} | {found}/{n_key} ({100*found/n_key:.1f} %) | {wrong} "
              f"| {other}/{n_other} ({100*other/n_other:.1f} %) | {len(events)} |")
