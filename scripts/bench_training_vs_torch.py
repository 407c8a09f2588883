#!/usr/bin/env python3
"""Training throughput of the default network, burn (flex, CPU) vs the same network in
PyTorch, run side by side on the same machine in one go; prints both and the ratio.

    cargo build --release && pip install torch && python3 scripts/bench_training_vs_torch.py
"""
import argparse, json, subprocess, sys

p = argparse.ArgumentParser()
p.add_argument("--bin", default="target/release/spikeword")
p.add_argument("--batch", type=int, default=64)
p.add_argument("--steps", type=int, default=20)
p.add_argument("--threads", type=int, default=2)
a = p.parse_args()

def js(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed: {r.stderr.strip()}")
    return json.loads(r.stdout.strip().splitlines()[-1])

ours = js([a.bin, "train-bench", "--batch", str(a.batch), "--steps", str(a.steps)])["clips_per_second"]
torch = js([sys.executable, "scripts/torch_reference.py", "--json", "--batch", str(a.batch), "--steps", str(a.steps), "--threads", str(a.threads)])["clips_per_second"]
print(f"spikeword (burn flex): {ours:.0f} clips/s (batch {a.batch}, forward+backward+Adam)")
print(f"pytorch ({a.threads} threads): {torch:.0f} clips/s")
print(f"ratio: {ours / torch:.2f}x")
