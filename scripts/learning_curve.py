#!/usr/bin/env python3
"""How accuracy on new voices grows with the number of training speakers.

Builds nested subsets of a Speech Commands folder's *training* speakers (salted split;
the validation and test speakers are always all there, so every run is measured on the
same clips), trains one network per subset and seed with `spikeword train`, and prints
validation accuracy against the number of training speakers: the mean over the last 20
epochs (less noisy than the best epoch on ~400 clips) and the best epoch.

    python3 scripts/learning_curve.py --data ../shared/data/speech_commands \
        --fractions 0.25,0.5,1 --seeds 1,2 --out runs/lc [-- extra train options]

Subsets are folders of symbolic links under OUT; a fraction keeps the training speakers
whose hash (salted apart from the split's) falls below it, so a smaller subset is inside
every larger one. Runs already finished under OUT are read, not trained again; two run
at a time (`--jobs`).
"""
import argparse, csv, hashlib, math, subprocess, sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gsc_split import salted_split, speaker_of  # noqa: E402


def keep_fraction(speaker):
    """A speaker's place in [0, 1), independent of the split's hash."""
    h = hashlib.sha1(("learning-curve:" + speaker).encode()).hexdigest()
    return int(h[:12], 16) / 16**12


def build_subset(data, out, fraction):
    """A folder of links: every non-training clip, and the training speakers below `fraction`."""
    speakers, clips = set(), 0
    out.mkdir(parents=True, exist_ok=True)
    for entry in sorted(data.iterdir()):
        target = out / entry.name
        if not entry.is_dir() or entry.name.startswith("_"):
            if not target.exists():
                target.symlink_to(entry.resolve())
            continue
        target.mkdir(exist_ok=True)
        for wav in sorted(entry.glob("*.wav")):
            if salted_split(wav.name) == "train":
                speaker = speaker_of(wav.name)
                if keep_fraction(speaker) >= fraction:
                    continue
                speakers.add(speaker)
                clips += 1
            link = target / wav.name
            if not link.exists():
                link.symlink_to(wav.resolve())
    return len(speakers), clips


def train(spikeword, subset, run_dir, seed, extra):
    if (run_dir / "done").exists():
        return
    cmd = [spikeword, "train", "--data", str(subset), "--split-rule", "salted",
           "--seed", str(seed), "--out", str(run_dir / "model.safetensors"),
           "--run-dir", str(run_dir), *extra]
    if (run_dir / "checkpoints").exists():
        cmd.append("--resume")
    with open(run_dir.parent / (run_dir.name + ".log"), "a") as log:
        subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT)
    (run_dir / "done").write_text("")


def val_figures(run_dir):
    rows = list(csv.DictReader(open(run_dir / "log.csv")))
    accs = [float(r["val_acc"]) for r in rows]
    last = accs[-20:]
    return 100 * sum(last) / len(last), 100 * max(accs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--fractions", default="0.25,0.5,1")
    ap.add_argument("--seeds", default="1,2")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--spikeword", default="target/release/spikeword")
    ap.add_argument("--jobs", type=int, default=2)
    args, extra = ap.parse_known_args()
    extra = [a for a in extra if a != "--"]
    fractions = [float(f) for f in args.fractions.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]

    sizes, work = {}, []
    for f in fractions:
        subset = args.out / f"data-{f:g}"
        sizes[f] = build_subset(args.data, subset, f)
        for s in seeds:
            run_dir = args.out / f"f{f:g}-s{s}"
            run_dir.mkdir(parents=True, exist_ok=True)
            work.append((subset, run_dir, s))
    with ThreadPoolExecutor(args.jobs) as pool:
        for job in [pool.submit(train, args.spikeword, *w, extra) for w in work]:
            job.result()

    print("training speakers | training clips | validation, mean of last 20 epochs "
          "(per seed) | best epoch (per seed)")
    points = []
    for f in fractions:
        figs = [val_figures(args.out / f"f{f:g}-s{s}") for s in seeds]
        mean = sum(m for m, _ in figs) / len(figs)
        points.append((math.log2(sizes[f][0]), mean))
        print(f"{sizes[f][0]:4d} ({f:g}) | {sizes[f][1]:5d} | {mean:.1f} % ("
              + ", ".join(f"{m:.1f}" for m, _ in figs) + ") | "
              + ", ".join(f"{b:.1f}" for _, b in figs))
    if len(points) > 1:
        print(f"least-squares slope: {slope(points):+.1f} points per doubling of the speakers")


def slope(points):
    """Least-squares slope of y on x."""
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    return (sum((x - mx) * (y - my) for x, y in points)
            / sum((x - mx) ** 2 for x, _ in points))


if __name__ == "__main__":
    main()
