#!/usr/bin/env python3
"""Does the networks' agreement tell a command word from a near-miss? The ensemble decides
by the mean of its networks' scores; here each network's own decision on the same streams
is kept too, and the detector (re-implemented frame for frame in detection_rules.py) scores
a word by how many networks would name it, alone or with the mean.

    cargo build --release --example stream_scores
    for each stream (validation seeds 1-3, test seeds 1-2; split S, seed N):
      target/release/examples/stream_scores models/gsc12.safetensors S N 30 D/all
      target/release/examples/stream_scores models/gsc12.safetensors@K S N 30 D/mK   (K = 0..9)
    python3 scripts/member_agreement.py --val D_val1 D_val2 D_val3 --test D_test1 D_test2 --members 10

Figures as detection_rules.py's: the most command words any point of a rule's family finds
with at most so many false alarms per hour (an upper bound of what calibration can reach,
alike for every rule). Needs numpy.
"""
import argparse

import numpy as np

from detection_rules import RATES, Stream, Streams, curve, envelope

SUSTAIN = 35  # frames: the shipped calibration's


def with_members(d, n):
    """One seed's streams of the ensemble, each stream also holding its networks' own
    smoothed probabilities `[network][frame][label]` and votes `[frame][label]`."""
    s = Streams(f"{d}/all")
    for name in ("kw", "nc"):
        st = getattr(s, name)
        st.members = np.stack([Stream(f"{d}/m{k}", name, st.meta["window"]).prob for k in range(n)])
        top = st.members.argmax(2)
        st.votes = np.stack([(top == c).mean(0) for c in range(st.prob.shape[1])], 1).astype(np.float32)
    return s


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--val", nargs="+", required=True)
    p.add_argument("--test", nargs="+", required=True)
    p.add_argument("--members", type=int, default=10)
    a = p.parse_args()
    V = [with_members(d, a.members) for d in a.val]
    T = [with_members(d, a.members) for d in a.test]
    grid = np.round(np.arange(0.3, 0.995, 0.01), 2)
    head = "  ".join(f"{r:>4}/h" for r in RATES)
    print(f"command words found (%) at most at … false alarms/h (validation | test), sustain {SUSTAIN}\n{'rule':58s}{head}  |  {head}")

    def row(name, transform=None, family=grid):
        print(f"{name:58s}{envelope(curve(V, family, SUSTAIN, transform))}  |  "
              f"{envelope(curve(T, family, SUSTAIN, transform))}", flush=True)

    row("the mean of the scores (shipped)")
    row("share of networks naming the word", lambda st: st.votes, np.round(np.arange(0.05, 1.001, 0.05), 2))
    row("mean probability × share of networks", lambda st: st.prob * st.votes)
    for k in (5, 6, 7, 8):
        row(f"mean probability, at least {k} of {a.members} networks agree",
            lambda st, k=k: np.where(st.votes >= k / a.members - 1e-6, st.prob, 0).astype(np.float32))
    row("median of the networks' probabilities", lambda st: np.median(st.members, 0).astype(np.float32))
    row("mean of the networks' probabilities", lambda st: st.members.mean(0).astype(np.float32))
    row("second lowest of the networks' probabilities", lambda st: np.sort(st.members, 0)[1].astype(np.float32))


if __name__ == "__main__":
    main()
