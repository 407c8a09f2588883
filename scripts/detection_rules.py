#!/usr/bin/env python3
"""Detection rules compared on recorded stream scores: does another way of turning the
model's per-frame scores into word events find more command words at the same false
alarms per hour? The streams are `bench-detect`'s (held-out speakers), dumped once by
`examples/stream_scores.rs`; the detector is re-implemented here frame for frame (the
global-threshold sweep of a directory reproduces `spikeword bench-detect` on the same
split, seed and minutes: hits, false alarms and their times).

    cargo build --release --example stream_scores
    for s in 1 2 3; do SPIKEWORD_DATA=DIR target/release/examples/stream_scores models/gsc12.safetensors validation $s 30 /tmp/streams/val$s; done
    for s in 1 2; do SPIKEWORD_DATA=DIR target/release/examples/stream_scores models/gsc12.safetensors test $s 30 /tmp/streams/test$s; done
    python3 scripts/detection_rules.py --val /tmp/streams/val{1,2,3} --test /tmp/streams/test{1,2}

Each rule is a family of operating points (a threshold, or one knob of per-word
thresholds); the figure for a rate is the most command words any point of the family finds
with at most that many false alarms per hour on the same streams, an upper bound of what
calibration can reach, alike for every rule. Needs numpy.
"""
import argparse, json
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

HOP, TAIL, SPAN, SLACK = 0.01, 0.02, 98, 0.3  # 10 ms frames, 30 ms window, 1 s clip, ±0.3 s match
HOLD, REFRACTORY = 20, 90  # the detector's defaults (frames)
RATES = (0.5, 2, 5, 10, 20, 50)


def softmax(m):
    m = m - m.max(1, keepdims=True)
    p = np.exp(m)
    return p / p.sum(1, keepdims=True)


def moving_mean(x, w):
    """Mean over the last w frames (fewer at the start), as the detector's ring."""
    c = np.cumsum(np.vstack([np.zeros((1, x.shape[1])), x.astype(np.float64)]), 0)
    n = np.arange(1, len(x) + 1)
    return (c[n] - c[np.maximum(n - w, 0)]) / np.minimum(n, w)[:, None]


def run_length(b):
    """Consecutive True values ending at each index."""
    idx = np.arange(len(b))
    last_false = np.maximum.accumulate(np.where(~b, idx, -1))
    return np.where(b, idx - last_false, 0)


def window_min(p, k):
    if k <= 1:
        return p
    pad = np.vstack([np.zeros((k - 1, p.shape[1]), p.dtype), p])
    return sliding_window_view(pad, k, axis=0).min(-1)


class Stream:
    def __init__(self, d, name, window):
        self.meta = json.load(open(f"{d}/{name}.json"))
        n = len(self.meta["labels"])
        self.raw = np.fromfile(f"{d}/{name}_scores.f32", dtype="<f4").reshape(-1, n)
        self.energy = np.fromfile(f"{d}/{name}_energy.f32", dtype="<f4")
        self.prob = softmax(moving_mean(self.raw, window or self.meta["window"])).astype(np.float32)


def detect(prob, energy, thr, sustain, report, score=None):
    """The detector's events (class, start s, end s): the leading word fires once its score
    held its threshold for `sustain` frames, after HOLD frames without a higher peak;
    REFRACTORY frames of quiet follow; a word re-arms below half its threshold."""
    T, C = prob.shape
    top = prob.argmax(1)
    s = prob if score is None else score
    s_top = s[np.arange(T), top]
    held = np.stack([run_length(s[:, c] >= thr[c]) for c in range(C)], 1)
    low = [np.flatnonzero(s[:, c] < thr[c] * 0.5) for c in range(C)]
    frames = np.flatnonzero(report[top] & (s_top >= thr[top]) & (held[np.arange(T), top] >= sustain[top]))
    peaks, quiet, disarmed, cand = [], 0, [-1] * C, None

    def armed(c, f):
        if disarmed[c] < 0:
            return True
        k = np.searchsorted(low[c], disarmed[c] + 1)
        return k < len(low[c]) and low[c][k] <= f

    for f in frames:
        if cand is not None and f > cand[1] + HOLD:
            peaks.append(cand)
            quiet, disarmed[cand[0]], cand = cand[1] + HOLD + REFRACTORY, cand[1] + HOLD, None
        c = top[f]
        if f >= quiet and armed(c, f) and (cand is None or s_top[f] > cand[2]):
            cand = (c, f, s_top[f])
    if cand is not None:
        peaks.append(cand)
    events = []
    for c, pf, _ in peaks:  # where the word lies: within 25 dB of the loudest frame
        lo = max(pf - SPAN + 1, 0)
        on = np.flatnonzero(energy[lo:pf + 1] > energy[lo:pf + 1].max() - 5.8)
        events.append((c, (lo + on[0]) * HOP, (lo + on[-1] + 1) * HOP + TAIL))
    return events


def hits(events, words, labels):
    found = np.zeros(len(words), bool)
    for c, s, e in events:
        for i, w in enumerate(words):
            if e > w["start"] - SLACK and s < w["end"] + SLACK and w["word"] == labels[c] and not found[i]:
                found[i] = True
                break
    return found


class Streams:
    """One seed's keyword and no-command streams."""

    def __init__(self, d, window=None):
        self.kw, self.nc = Stream(d, "kw", window), Stream(d, "nc", window)
        self.labels = self.kw.meta["labels"]
        self.report = np.array([l not in ("_silence_", "_unknown_") for l in self.labels])
        self.hours = self.nc.meta["hours"]

    def measure(self, thr, sustain, transform=None):
        C = len(self.labels)
        thr = np.broadcast_to(np.asarray(thr, np.float32), (C,))
        sustain = np.broadcast_to(np.asarray(sustain), (C,))
        sc = (lambda st: None) if transform is None else (lambda st: transform(st))
        found = hits(detect(self.kw.prob, self.kw.energy, thr, sustain, self.report, sc(self.kw)),
                     self.kw.meta["words"], self.labels)
        alarms = len(detect(self.nc.prob, self.nc.energy, thr, sustain, self.report, sc(self.nc)))
        return found, alarms


def curve(sets, family, sustain, transform=None):
    pts = []
    for thr in family:
        h = n = fa = 0
        for s in sets:
            found, alarms = s.measure(thr, sustain, transform)
            h, n, fa = h + found.sum(), n + len(found), fa + alarms
        pts.append((h / n, fa / sum(s.hours for s in sets)))
    return pts


def envelope(pts):
    return "  ".join(f"{100 * max([h for h, r in pts if r <= rate + 1e-9], default=0):5.1f}" for rate in RATES)


def keyword_quantile_family(sets, sustain):
    """Per-word thresholds at the q-quantile of each word's best sustained score over its
    own clips: every word found equally often, q the one knob."""
    best = {}
    for s in sets:
        held = window_min(s.kw.prob, sustain)
        for w in s.kw.meta["words"]:
            c = s.labels.index(w["word"])
            a, b = int(w["start"] / HOP), int((w["end"] + 0.8) / HOP)
            best.setdefault(c, []).append(held[a:b, c].max())
    fam = []
    for q in np.arange(0.02, 0.9, 0.01):
        t = np.full(len(sets[0].labels), 0.99, np.float32)
        for c, v in best.items():
            t[c] = np.clip(np.quantile(v, q), 0.3, 0.99)
        fam.append(t)
    return fam


def alarm_peaks(sets, sustain, levels):
    """Per word: peaks of its sustained score (as the leading word, 300 ms apart) in the
    no-command streams at or above each level: where false alarms would come from."""
    rows = {}
    for s in sets:
        held, top = window_min(s.nc.prob, sustain), s.nc.prob.argmax(1)
        for c in np.flatnonzero(s.report):
            x = np.where(top == c, held[:, c], 0)
            idx = np.flatnonzero(x >= min(levels))
            peaks = [x[g].max() for g in np.split(idx, np.flatnonzero(np.diff(idx) > 30) + 1) if len(g)]
            r = rows.setdefault(s.labels[c], np.zeros(len(levels), int))
            r += [(np.array(peaks) >= l).sum() for l in levels]
    return rows


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--val", nargs="+", required=True, help="stream_scores directories of validation speakers")
    p.add_argument("--test", nargs="+", required=True, help="… of test speakers (read, not chosen on)")
    a = p.parse_args()
    grid = np.round(np.arange(0.3, 0.995, 0.01), 2)
    head = "  ".join(f"{r:>4}/h" for r in RATES)
    print(f"command words found (%) at most at … false alarms/h (validation | test)\n{'rule':52s}{head}  |  {head}")

    def row(name, val, test):
        print(f"{name:52s}{envelope(val)}  |  {envelope(test)}", flush=True)

    for window in (60, 80, 100, 120):
        V = [Streams(d, window) for d in a.val]
        T = [Streams(d, window) for d in a.test]
        for sustain in (1, 15, 25, 35, 45, 55) if window == 80 else (25, 35):
            row(f"window {window} frames, sustain {sustain}, one threshold", curve(V, grid, sustain), curve(T, grid, sustain))
    V, T = [Streams(d) for d in a.val], [Streams(d) for d in a.test]
    unknown = V[0].labels.index("_unknown_")
    transforms = {
        "word against _unknown_ only: p/(p + p_unknown)": lambda st: st.prob / (st.prob + st.prob[:, [unknown]] + 1e-9),
        "margin over the second label": lambda st: np.repeat(np.diff(np.sort(st.prob, 1)[:, -2:], axis=1), st.prob.shape[1], 1),
        "mean of frame probabilities (not of scores)": lambda st: moving_mean(softmax(st.raw), st.meta["window"]).astype(np.float32),
    }
    for name, f in transforms.items():
        row(f"{name}, sustain 25", curve(V, grid, 25, f), curve(T, grid, 25, f))
    fam = keyword_quantile_family(V, 25)
    row("per word: equal share found (quantiles), sustain 25", curve(V, fam, 25), curve(T, fam, 25))
    levels = (0.3, 0.5, 0.7, 0.8)
    print(f"\nno-command peaks per word at or above {levels} (sustain 25): validation ({sum(s.hours for s in V):.1f} h) | test ({sum(s.hours for s in T):.1f} h)")
    pv, pt = alarm_peaks(V, 25, levels), alarm_peaks(T, 25, levels)
    for w in pv:
        print(f"  {w:6s} {' '.join(f'{n:4d}' for n in pv[w])}  | {' '.join(f'{n:4d}' for n in pt[w])}")


if __name__ == "__main__":
    main()
