#!/usr/bin/env python3
"""Compare log-mel feature throughput: librosa vs `spikeword features-bench`.

Run from the crate root (/work/main) after `cargo build --release`:

    python3 scripts/bench_features_vs_librosa.py [DIR] [--limit 200] [--bin target/release/spikeword]

(a) times librosa (single process, loading included) computing the same log-mel as
    scripts/librosa_reference.py on each WAV: int16/32768 -> float32, melspectrogram with
    n_fft=480, hop=160, hann, center=False, power=2, 40 Slaney mels 20-4000 Hz, log(1e-6 + M);
(b) runs `<bin> features-bench <files...>`, which prints one JSON line such as
    {"files":200,"frames":19600,"seconds":0.05,"frames_per_second":392000.0}
and prints both frames/s figures and their ratio (spikeword / librosa).
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import librosa

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = ROOT.parent / "shared" / "data" / "speech_commands" / "yes"
DEFAULT_BIN = ROOT / "target" / "release" / "spikeword"


def librosa_logmel(path):
    data, sr = sf.read(str(path), dtype="int16", always_2d=False)
    y = data.astype(np.float32) / np.float32(32768.0)
    m = librosa.feature.melspectrogram(
        y=y, sr=sr, n_fft=480, hop_length=160, win_length=480, window="hann",
        center=False, power=2.0, n_mels=40, fmin=20.0, fmax=4000.0, htk=False, norm="slaney",
    )
    return np.log(1e-6 + m).T


def bench_librosa(files, repeats):
    # warm up: imports, numba JIT, mel filter-bank cache are not what we want to time
    librosa_logmel(files[0])
    best = None
    frames = 0
    for _ in range(repeats):
        frames = 0
        t0 = time.perf_counter()
        for f in files:
            frames += librosa_logmel(f).shape[0]
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    return frames, best


def bench_rust(binary, files):
    if not Path(binary).is_file():
        sys.exit(f"{binary} not found: run `cargo build --release` or pass --bin "
                 f"(or use --librosa-only)")
    cmd = [str(binary), "features-bench", *map(str, files)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"{binary} failed (rc {res.returncode}):\n{res.stderr}")
    lines = [l for l in res.stdout.splitlines() if l.strip()]
    if not lines:
        sys.exit(f"{binary} printed nothing on stdout; stderr:\n{res.stderr}")
    try:
        return json.loads(lines[-1])
    except json.JSONDecodeError:
        sys.exit(f"could not parse JSON from {binary}: {lines[-1]!r}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", nargs="?", type=Path, default=DEFAULT_DIR,
                    help="folder of WAV files (default: ../shared/data/speech_commands/yes)")
    ap.add_argument("--limit", type=int, default=200, help="use the first N files, sorted (default 200)")
    ap.add_argument("--bin", type=Path, default=DEFAULT_BIN,
                    help="spikeword binary (default: target/release/spikeword)")
    ap.add_argument("--repeats", type=int, default=3,
                    help="time librosa this many passes over the files and report the fastest "
                         "(default 3; favours librosa, so the ratio is conservative)")
    ap.add_argument("--librosa-only", action="store_true", help="skip the Rust binary")
    args = ap.parse_args()

    files = sorted(args.dir.glob("*.wav"))[: args.limit]
    if not files:
        sys.exit(f"no .wav files in {args.dir}")

    frames, secs = bench_librosa(files, max(1, args.repeats))
    lib_fps = frames / secs
    print(f"librosa: {lib_fps:.0f} frames/s ({len(files)} files, {frames} frames, {secs:.3f} s)")
    if args.librosa_only:
        return

    r = bench_rust(args.bin, files)
    rust_fps = float(r["frames_per_second"])
    print(f"spikeword: {rust_fps:.0f} frames/s ({r.get('files')} files, {r.get('frames')} frames, "
          f"{float(r.get('seconds', float('nan'))):.3f} s)")
    if r.get("frames") is not None and int(r["frames"]) != frames:
        print(f"warning: frame counts differ (librosa {frames}, spikeword {r['frames']})",
              file=sys.stderr)
    print(f"ratio: {rust_fps / lib_fps:.1f}x")


if __name__ == "__main__":
    main()
