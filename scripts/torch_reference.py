#!/usr/bin/env python3
"""PyTorch reference of spikeword's spiking keyword-spotting network, for throughput.

This is the side-by-side peer of the Rust/burn training benchmark: it builds the same
network and the same training step, then times training on one random batch. Compare
its clips/s with the Rust number on the same machine and thread count.

Network (must match src/snn and the burn training graph):
  input x: [B, 40, T] normalized log-mel (40 bands as channels, T = 98 frames)
  3 spiking layers, layer i:
    causal dilated Conv1d(in_ch -> 64, kernel 4, dilation d_i in (1, 4, 16), bias),
      left zero-padding of d_i*3 frames, no right padding
    LIF over time, per channel learnable beta (init 0.9, clamped to [0.01, 0.999]) and
      threshold (init 1.0, clamped >= 0.05); v starts at 0:
        v = beta*v + (1-beta)*I[t] - reset
        s = H(v - thr)       (forward Heaviside, backward sigmoid surrogate, slope k = 5)
        reset = s.detach() * thr       (subtractive, applied at the next step)
  readout: Linear(64 -> 12) per time step on the last layer's spikes, then a non-spiking
    leaky integrator with learnable per-class beta_out (init 0.9, not clamped):
        o[t] = beta_out*o[t-1] + (1-beta_out)*(W s[t] + b);  logits = mean_t o[t]
  init: as the Rust `random_network`: conv weights U(+-3/sqrt(in_ch*4)), readout weights
    U(+-1/sqrt(64)), biases 0.
  loss: cross_entropy(logits, y) + 4 * sum over layers of max(0, mean firing rate - 0.03),
    where the firing rate of a layer is the mean of its spike tensor (forward: the
    fraction of 1s; gradient: through the surrogate).
  optimizer: Adam, lr 1e-3.

Benchmark: random normal input [64, 40, 98], random labels, 3 warm-up steps, then 20
timed steps of forward + backward + optimizer step.

    pip install torch
    python3 scripts/torch_reference.py [--threads 2] [--json]

prints `torch: X clips/s (batch 64, threads 2)`, or with --json
{"clips_per_second": X, "batch": 64, "threads": 2}.
"""

import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

N_MELS = 40
FRAMES = 98
CHANNELS = 64
KERNEL = 4
DILATIONS = (1, 4, 16)
N_CLASSES = 12
INIT_BETA = 0.9
INIT_THRESHOLD = 1.0
SURROGATE_SLOPE = 5.0
RATE_TARGET = 0.03
RATE_WEIGHT = 4.0
LR = 1e-3


def spike(u: torch.Tensor, k: float = SURROGATE_SLOPE) -> torch.Tensor:
    """Heaviside(u) forward, d sigmoid(k*u)/du backward."""
    sg = torch.sigmoid(k * u)
    return sg - sg.detach() + (u > 0).float().detach()


class SpikingLayer(nn.Module):
    """Causal dilated conv over time followed by a LIF neuron per output channel."""

    def __init__(self, in_ch: int, out_ch: int, dilation: int):
        super().__init__()
        self.pad = dilation * (KERNEL - 1)
        self.conv = nn.Conv1d(in_ch, out_ch, KERNEL, dilation=dilation, bias=True)
        self.beta = nn.Parameter(torch.full((out_ch,), INIT_BETA))
        self.threshold = nn.Parameter(torch.full((out_ch,), INIT_THRESHOLD))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: [B, C_in, T] -> spikes [B, C_out, T]
        current = self.conv(F.pad(x, (self.pad, 0)))
        beta = self.beta.clamp(0.01, 0.999)
        thr = self.threshold.clamp(min=0.05)
        b, c, t_len = current.shape
        v = current.new_zeros(b, c)
        reset = current.new_zeros(b, c)
        spikes = []
        for t in range(t_len):
            v = beta * v + (1.0 - beta) * current[:, :, t] - reset
            s = spike(v - thr)
            reset = s.detach() * thr
            spikes.append(s)
        return torch.stack(spikes, dim=2)


class SpikeKws(nn.Module):
    def __init__(self):
        super().__init__()
        layers = []
        in_ch = N_MELS
        for d in DILATIONS:
            layers.append(SpikingLayer(in_ch, CHANNELS, d))
            in_ch = CHANNELS
        self.layers = nn.ModuleList(layers)
        self.readout = nn.Linear(CHANNELS, N_CLASSES)
        self.beta_out = nn.Parameter(torch.full((N_CLASSES,), INIT_BETA))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self):
        """Same scaling as the Rust `random_network`: conv weights U(+-3/sqrt(fan_in)),
        readout weights U(+-1/sqrt(64)), all biases 0. (PyTorch's default conv init is
        ~3x smaller, too small for any LIF neuron to reach threshold 1.)"""
        for layer in self.layers:
            bound = 3.0 / (layer.conv.in_channels * KERNEL) ** 0.5
            layer.conv.weight.uniform_(-bound, bound)
            layer.conv.bias.zero_()
        bound = 1.0 / CHANNELS ** 0.5
        self.readout.weight.uniform_(-bound, bound)
        self.readout.bias.zero_()

    def forward(self, x: torch.Tensor):
        """Returns (logits [B, 12], list of per-layer spike tensors [B, 64, T])."""
        layer_spikes = []
        h = x
        for layer in self.layers:
            h = layer(h)
            layer_spikes.append(h)
        drive = self.readout(h.transpose(1, 2))  # [B, T, 12]
        # Mean over t of the leaky integrator o_t = b o_{t-1} + (1-b) y_t, in closed form
        # (as the Rust side computes it): sum_t y_t (1 - b^(T-t)) / T.
        t_len = drive.shape[1]
        expo = torch.arange(t_len, 0, -1, dtype=drive.dtype, device=drive.device)  # T-t
        w = (1.0 - self.beta_out.unsqueeze(1) ** expo.unsqueeze(0)) / t_len  # [12, T]
        return (drive * w.t().unsqueeze(0)).sum(1), layer_spikes


def loss_fn(logits, layer_spikes, labels):
    # Same loss as spikeword's: cross entropy + RATE_WEIGHT per unit of each layer's mean
    # spike probability above RATE_TARGET.
    ce = F.cross_entropy(logits, labels)
    excess = sum(torch.clamp(s.mean() - RATE_TARGET, min=0.0) for s in layer_spikes)
    return ce + RATE_WEIGHT * excess


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print a JSON object instead")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    model = SpikeKws()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    x = torch.randn(args.batch, N_MELS, FRAMES)
    y = torch.randint(0, N_CLASSES, (args.batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        logits, spikes = model(x)
        loss = loss_fn(logits, spikes, y)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(args.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    elapsed = time.perf_counter() - t0
    cps = args.batch * args.steps / elapsed

    if args.json:
        print(json.dumps({"clips_per_second": cps, "batch": args.batch, "threads": args.threads}))
    else:
        print(f"torch: {cps:.1f} clips/s (batch {args.batch}, threads {args.threads})")


if __name__ == "__main__":
    main()
