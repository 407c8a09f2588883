#!/usr/bin/env python3
"""Writes tests/fixtures/edited_models/ (read by tests/model_files.rs) and the same files
as seeds of the model-file fuzz target (fuzz/corpus/model_file/): a tiny valid
one-network model and copies with one field of its config made absurd, the kinds of
edits that once made the apps panic or hang. Run from the crate root."""
import json, os, random, struct

OUTS = ["tests/fixtures/edited_models", "fuzz/corpus/model_file"]

def config(**edits):
    feats = dict(sample_rate=16000, n_mels=8, fmin=20.0, fmax=4000.0,
                 win_length=480, hop_length=160, log_eps=1e-6)
    net = dict(channels=[4, 4], kernel=2, dilations=[1, 2], reset="subtract",
               surrogate="sigmoid", surrogate_slope=5.0, init_beta=0.9,
               init_threshold=1.0, logit_scale=10.0, decision_frames=0)
    cfg = dict(features=feats, encoder=dict(kind="current"), network=net,
               labels=["yes", "no", "_silence_"], norm_mean=[-8.0] * 8, norm_std=[3.0] * 8)
    for path, value in edits.items():
        part, key = path.split(".") if "." in path else (None, path)
        (cfg[part] if part else cfg)[key] = value
    return cfg

def tensors(cfg, rng):
    out, prev = {}, cfg["features"]["n_mels"]
    n = len(cfg["labels"])
    net = cfg["network"]
    for i, c in enumerate(net["channels"]):
        out[f"layers.{i}.weight"] = ([c, prev, net["kernel"]], None)
        out[f"layers.{i}.bias"] = ([c], None)
        out[f"layers.{i}.beta"] = ([c], 0.9)
        out[f"layers.{i}.threshold"] = ([c], 1.0)
        prev = c
    out["readout.weight"] = ([prev, n], None)
    out["readout.bias"] = ([n], None)
    out["readout.beta"] = ([n], 0.8)
    return out

def safetensors(cfg, rng, meta_extra=None):
    header, data = {}, b""
    for name, (shape, fill) in tensors(cfg, rng).items():
        count = 1
        for s in shape:
            count *= s
        vals = [fill if fill is not None else rng.uniform(-0.5, 0.5) for _ in range(count)]
        raw = struct.pack(f"<{count}f", *vals)
        header[name] = dict(dtype="F32", shape=shape, data_offsets=[len(data), len(data) + len(raw)])
        data += raw
    meta = {"format": "spikeword-model", "format_version": "1", "members": "1",
            "config": json.dumps(cfg), "training": json.dumps({"split_rule": "salted"})}
    meta.update(meta_extra or {})
    header["__metadata__"] = meta
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data

def main():
    rng = random.Random(1)
    seeds = {
        "valid": config(),
        "hop-above-window": config(**{"features.hop_length": 960}),
        "huge-hop": config(**{"features.hop_length": 1000000000}),
        "huge-rate": config(**{"features.sample_rate": 1000000000}),
        "huge-window": config(**{"features.win_length": 1000000000}),
        "zero-kernel": config(**{"network.kernel": 0}),
        "zero-dilation": config(**{"network.dilations": [0, 2]}),
        "long-decision": config(**{"network.decision_frames": 500}),
        "duplicate-labels": config(labels=["yes", "yes", "_silence_"]),
        "short-norm": config(norm_std=[3.0] * 3),
    }
    files = {name: safetensors(cfg, rng) for name, cfg in seeds.items()}
    files["two-members"] = safetensors(config(), rng, {"members": "2", "format_version": "2"})
    for out in OUTS:
        os.makedirs(out, exist_ok=True)
        for name, data in files.items():
            with open(os.path.join(out, name), "wb") as f:
                f.write(data)

main()
