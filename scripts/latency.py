#!/usr/bin/env python3
"""Detection latency and recall in a stream: 60 held-out Speech Commands keyword clips
(test speakers of the bundled model's salted split), each followed by 1 s of background
noise, in one recording; `spikeword detect --json` runs over it. Latency = time the event
was emitted minus the end of the word (last 10 ms frame within 25 dB of the clip's peak).

    python3 scripts/latency.py [--bin target/release/spikeword]
"""
import argparse, json, os, subprocess, tempfile, wave
import numpy as np
from gsc_split import KEYWORDS, read_clip, salted_split

p = argparse.ArgumentParser()
p.add_argument("--bin", default="target/release/spikeword")
p.add_argument("--gsc", default=os.environ.get("SPIKEWORD_DATA", "../shared/data/speech_commands"))
p.add_argument("--n", type=int, default=60)
a = p.parse_args()

clips = []
for w in KEYWORDS:
    names = sorted(n for n in os.listdir(os.path.join(a.gsc, w)) if salted_split(n) == "test")
    clips += [(w, os.path.join(a.gsc, w, n)) for n in names[: a.n // len(KEYWORDS)]]
noise_dir = os.path.join(a.gsc, "_background_noise_")
noise = read_clip(os.path.join(noise_dir, sorted(os.listdir(noise_dir))[0])) * 0.3
stream, truth = [noise], []
t = 1.0
for w, f in clips:
    x = read_clip(f)
    e = np.array([np.mean(x[i:i + 160] ** 2) + 1e-12 for i in range(0, 16000, 160)])
    db = 10 * np.log10(e)
    loud = np.nonzero(db > db.max() - 25)[0]
    truth.append((w, t + loud[0] * 0.01, t + (loud[-1] + 1) * 0.01))
    stream += [x, noise]
    t += 2.0
y = np.concatenate(stream)
tmp = tempfile.mkdtemp()
path = os.path.join(tmp, "stream.wav")
with wave.open(path, "wb") as wf:
    wf.setnchannels(1); wf.setsampwidth(2); wf.setframerate(16000)
    wf.writeframes((np.clip(y, -1, 1) * 32767).astype("<i2").tobytes())
out = subprocess.run([a.bin, "detect", "--json", path], capture_output=True, text=True, check=True).stdout
events = [json.loads(l) for l in out.splitlines()]
lat, hits = [], 0
for w, s, e in truth:
    m = [ev for ev in events if ev["word"] == w and ev["start"] < e + 0.3 and ev["end"] > s - 0.3]
    if m:
        hits += 1
        lat.append(m[0]["emitted"] - e)
false = len(events) - hits
print(f"{len(truth)} words in {t:.0f} s: {hits} detected with the right word ({100*hits/len(truth):.0f} %), {false} other events")
if lat:
    lat = np.array(lat)
    print(f"latency from end of word to event: median {1000*np.median(lat):.0f} ms, 90th percentile {1000*np.percentile(lat, 90):.0f} ms")
