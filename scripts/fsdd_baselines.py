#!/usr/bin/env python3
"""Reference points for the FSDD few-shot task (README, retrain): how far can anything
get on the five unseen speakers from speaker jackson's first 10 recordings per digit?

- classic baselines on MFCCs (13 coefficients, mean-normalised per clip): logistic
  regression on 5 time bins, and 1-nearest-neighbour with dynamic time warping;
- linear probes (logistic regression) on the time-pooled spike counts of the model's last
  spiking layer, the readout's input: from jackson's 10 per word (what `retrain` fits),
  from the Speech Commands clips of the ten digit words (hundreds of real speakers, no
  FSDD), and from five FSDD speakers to the sixth (leave one speaker out, averaged);
- the same probe from jackson's recordings after a projection learnt on Speech Commands'
  other words (LDA over its speakers, the digits left out): what removing speaker
  directions, known from other words, gives a few-shot readout.

Run from the crate root (needs numpy, scipy, scikit-learn; librosa for the MFCC baselines):
    cargo build --release --example spike_counts && python3 scripts/fsdd_baselines.py
"""
import argparse, json, os, re, subprocess, tempfile
import numpy as np
import scipy.linalg
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
    import librosa  # only the classic baselines need it
    y, _ = librosa.load(path, sr=16000)
    m = librosa.feature.mfcc(y=y, sr=16000, n_mfcc=13, n_fft=480, hop_length=160, n_mels=40, fmin=20, fmax=4000)
    return m - m.mean(1, keepdims=True)
def classic():
    import librosa
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
def last_layer_widths(model):
    """Each network's [c_out of layer 0, 1, 2], from the safetensors header."""
    with open(model, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        head = json.loads(f.read(n))
    nets = {}
    for k, v in head.items():
        m = re.fullmatch(r"(?:members\.(\d+)\.)?layers\.(\d)\.bias", k)
        if m:
            nets.setdefault(int(m.group(1) or 0), {})[int(m.group(2))] = v["shape"][0]
    return [[nets[i][l] for l in sorted(nets[i])] for i in sorted(nets)]
WIDTHS = last_layer_widths(a.model)
def spikes(files):
    with tempfile.NamedTemporaryFile(suffix=".f32") as out:
        subprocess.run(["target/release/examples/spike_counts", a.model, out.name],
                       input="\n".join(f for f, _ in files), text=True, check=True)
        x = np.fromfile(out.name, dtype=np.float32).reshape(len(files), -1)
    # Per clip [member][layer][channel], one bin; the readout reads the last layer.
    parts, o = [], 0
    for w in WIDTHS:
        parts.append(x[:, o + sum(w[:-1]):o + sum(w)])
        o += sum(w)
    assert o == x.shape[1], "spike_counts wrote another layout than the model's layers"
    x = parts[a.member] if a.member is not None else np.concatenate(parts, 1)
    return np.log1p(x)
S, G = spikes(fsdd), spikes(gsc)
gword = np.array([w for _, w in gsc])
rows.append(("SNN last-layer spike counts, logistic regression", f"{a.speaker}'s {a.k} per word", probe(S[train], word[train], S[test], word[test])))
rows.append(("SNN last-layer spike counts, logistic regression", f"{len(gsc)} Speech Commands clips of the digits", probe(G, gword, S[test], word[test])))
loso = [probe(S[spk != s], word[spk != s], S[spk == s], word[spk == s]) for s in sorted(set(spk))]
rows.append(("SNN last-layer spike counts, logistic regression", "the other five FSDD speakers (each speaker in turn)", float(np.mean(loso))))

# The same counts projected on the directions that tell Speech Commands' other words apart
# across its speakers (regularised LDA; no digit word, so nothing of the task is learnt).
others = [(f, w) for w in sorted(os.listdir(a.gsc)) if not w.startswith("_") and w not in DIGITS
          and os.path.isdir(os.path.join(a.gsc, w))
          for f in [os.path.abspath(os.path.join(a.gsc, w, n)) for n in sorted(os.listdir(os.path.join(a.gsc, w))) if n.endswith(".wav")]]
O, oword = spikes(others), np.array([w for _, w in others])
mu = O.mean(0)
Sw, Sb = np.zeros((O.shape[1],) * 2), np.zeros((O.shape[1],) * 2)
for w in sorted(set(oword)):
    X = O[oword == w]; m = X.mean(0)
    Sw += (X - m).T @ (X - m); Sb += len(X) * np.outer(m - mu, m - mu)
Sw /= len(O); Sb /= len(O)
reg = 3.0 * np.trace(Sw) / len(Sw)
_, E = scipy.linalg.eigh(Sb, Sw + reg * np.eye(len(Sw)))
P = E[:, -(len(set(oword)) - 1):]
rows.append(("SNN last-layer spike counts projected by LDA on the other Speech Commands words, logistic regression",
             f"{a.speaker}'s {a.k} per word", probe((S[train] - mu) @ P, word[train], (S[test] - mu) @ P, word[test])))

print(f"| features and classifier | trained on | accuracy on unseen speakers, among the ten digits |")
print("|---|---|---|")
for name, data, acc in rows:
    print(f"| {name} | {data} | {100 * acc:.1f} % |")
