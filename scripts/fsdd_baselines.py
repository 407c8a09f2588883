#!/usr/bin/env python3
"""Reference points for the FSDD few-shot task (README, retrain): how far can anything
get on the five unseen speakers from speaker jackson's first 10 recordings per digit?

- classic baselines on MFCCs (13 coefficients, mean-normalised per clip): logistic
  regression on 5 time bins, and 1-nearest-neighbour with dynamic time warping;
- linear probes (logistic regression) on the time-pooled spike counts of the model's last
  spiking layer, the readout's input: from jackson's 10 per word (what `retrain` fits),
  from the Speech Commands clips of the ten digit words (hundreds of real speakers, no
  FSDD), and from five FSDD speakers to the sixth (leave one speaker out, averaged).

Run from the crate root (needs numpy, scikit-learn, librosa):
    cargo build --release --example spike_counts && python3 scripts/fsdd_baselines.py
"""
import argparse, os, subprocess, tempfile
import numpy as np
import librosa
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

p = argparse.ArgumentParser()
p.add_argument("--model", default="models/gsc12.safetensors")
p.add_argument("--fsdd", default=os.environ.get("SPIKEWORD_FSDD", "../shared/data/fsdd"))
p.add_argument("--gsc", default=os.environ.get("SPIKEWORD_DATA", "../shared/data/speech_commands"))
p.add_argument("--speaker", default="jackson")
p.add_argument("--k", type=int, default=10)
p.add_argument("--member", type=int, help="probe one network of an ensemble (default: all, side by side)")
p.add_argument("--probes-only", action="store_true", help="skip the MFCC baselines (DTW takes minutes)")
a = p.parse_args()
DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]

def listing(root, named):
    out = []
    for w in DIGITS:
        d = os.path.join(root, w)
        out += [(os.path.abspath(os.path.join(d, f)), w) for f in sorted(os.listdir(d)) if f.endswith(".wav")]
    return out

fsdd = listing(a.fsdd, True)
gsc = listing(a.gsc, False)
word = np.array([w for _, w in fsdd])
spk = np.array([os.path.basename(f).split("_")[1] for f, _ in fsdd])
take = np.array([int(os.path.basename(f).split("_")[2].split(".")[0]) for f, _ in fsdd])
train = (spk == a.speaker) & (take < a.k)
test = spk != a.speaker

def probe(xtr, ytr, xte, yte):
    sc = StandardScaler().fit(xtr)
    clf = LogisticRegression(C=0.1, max_iter=3000).fit(sc.transform(xtr), ytr)
    return (clf.predict(sc.transform(xte)) == yte).mean()

rows = []
# Classic baselines.
def mfcc(path):
    y, _ = librosa.load(path, sr=16000)
    m = librosa.feature.mfcc(y=y, sr=16000, n_mfcc=13, n_fft=480, hop_length=160, n_mels=40, fmin=20, fmax=4000)
    return m - m.mean(1, keepdims=True)
def classic():
    M = [mfcc(f) for f, _ in fsdd]
    binned = np.array([np.concatenate([b.mean(1) for b in np.array_split(m, 5, axis=1)] + [m.std(1)]) for m in M])
    rows.append(("MFCC, 5 time bins, logistic regression", f"{a.speaker}'s {a.k} per word", probe(binned[train], word[train], binned[test], word[test])))
    tr_idx = np.where(train)[0]
    dtw_right = 0
    for i in np.where(test)[0]:
        costs = [librosa.sequence.dtw(M[i], M[j])[0][-1, -1] for j in tr_idx]
        dtw_right += word[tr_idx[int(np.argmin(costs))]] == word[i]
    rows.append(("MFCC, DTW 1-nearest-neighbour", f"{a.speaker}'s {a.k} per word", dtw_right / test.sum()))
if not a.probes_only:
    classic()

# Spike counts of the model's last layer.
def spikes(files):
    with tempfile.NamedTemporaryFile(suffix=".f32") as out:
        subprocess.run(["target/release/examples/spike_counts", a.model, out.name],
                       input="\n".join(f for f, _ in files), text=True, check=True)
        x = np.fromfile(out.name, dtype=np.float32)
    n = len(files)
    # [clip][member][layer 0..2][64], one bin; the readout reads the last layer.
    x = x.reshape(n, -1, 3, 64)[:, :, -1, :]
    x = (x[:, a.member, :] if a.member is not None else x).reshape(n, -1)
    return np.log1p(x)
S, G = spikes(fsdd), spikes(gsc)
gword = np.array([w for _, w in gsc])
rows.append(("SNN last-layer spike counts, logistic regression", f"{a.speaker}'s {a.k} per word", probe(S[train], word[train], S[test], word[test])))
rows.append(("SNN last-layer spike counts, logistic regression", f"{len(gsc)} Speech Commands clips of the digits", probe(G, gword, S[test], word[test])))
loso = [probe(S[spk != s], word[spk != s], S[spk == s], word[spk == s]) for s in sorted(set(spk))]
rows.append(("SNN last-layer spike counts, logistic regression", "the other five FSDD speakers (each speaker in turn)", float(np.mean(loso))))

print(f"| features and classifier | trained on | accuracy on unseen speakers, among the ten digits |")
print("|---|---|---|")
for name, data, acc in rows:
    print(f"| {name} | {data} | {100 * acc:.1f} % |")
