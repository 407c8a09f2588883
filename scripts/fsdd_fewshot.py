#!/usr/bin/env python3
"""Few-shot retraining benchmark on FSDD: teach the ten digit words from one speaker's
k examples per word (k = 1, 3, 5, 10, 20), classify the other five speakers' recordings,
and check the original Speech Commands words on held-out speakers before and after.

Run from the crate root after `cargo build --release`:
    python3 scripts/fsdd_fewshot.py [--speaker jackson] [--ks 1,3,5,10,20]
Prints a Markdown table (the one in docs/retraining.md). `--add DIR` adds more examples of
each digit (DIR/WORD/*.wav, e.g. synthetic voices) to the speaker's.
"""
import argparse, json, os, subprocess, sys, tempfile, time

p = argparse.ArgumentParser()
p.add_argument("--bin", default="target/release/spikeword")
p.add_argument("--fsdd", default=os.environ.get("SPIKEWORD_FSDD", "../shared/data/fsdd"))
p.add_argument("--gsc", default=os.environ.get("SPIKEWORD_DATA", "../shared/data/speech_commands"))
p.add_argument("--model", default="models/gsc12.safetensors")
p.add_argument("--speaker", default="jackson")
p.add_argument("--ks", default="1,3,5,10,20")
p.add_argument("--variants", default=",--tts", help="retrain flag sets to compare, comma separated ('' = plain)")
p.add_argument("--add", help="a folder of more examples per digit (DIR/WORD/*.wav, e.g. scripts/neural_tts.py's voices) added to the speaker's")
args = p.parse_args()

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]

def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode not in (0, 2):
        sys.exit(f"{' '.join(cmd)} failed:\n{r.stderr}")
    return r.stdout

def files(word):
    d = os.path.join(args.fsdd, word)
    fs = [f for f in os.listdir(d) if f.endswith(".wav")]
    return sorted(fs, key=lambda f: (f.split("_")[1], int(f.split("_")[2].split(".")[0])))

tmp = tempfile.mkdtemp()
# The other speakers' recordings, one folder per word (for `eval`).
test_dir = os.path.join(tmp, "test")
for w in DIGITS:
    os.makedirs(os.path.join(test_dir, w))
    for f in files(w):
        if f.split("_")[1] != args.speaker:
            os.symlink(os.path.abspath(os.path.join(args.fsdd, w, f)), os.path.join(test_dir, w, f))

def new_word_accuracy(model):
    """Accuracy of the retrained model on the other speakers' digits: over all its labels
    (as `classify` decides) and among the new words only (confusions with old words aside)."""
    out = run([args.bin, "classify", "--model", model, test_dir, "--json", "--top", "100"])
    n = right = right_new = 0
    for line in out.splitlines():
        o = json.loads(line)
        if "label" not in o:
            continue
        word = os.path.basename(os.path.dirname(o["file"]))
        best_new = max((t for t in o["top"] if t["label"] in DIGITS), key=lambda t: t["score"])
        n += 1
        right += o["label"] == word
        right_new += best_new["label"] == word
    return {"accuracy": right / n, "among_new": right_new / n, "n": n}

def gsc_acc(model):
    out = run([args.bin, "eval", "--model", model, "--data", args.gsc, "--split", "test", "--ignore", ",".join(DIGITS), "--json"])
    return json.loads(out)["accuracy"]

base_acc = gsc_acc(args.model)
print(f"base model on Speech Commands held-out speakers (digit words left out): {100*base_acc:.2f} %", file=sys.stderr)
rows = []
variants = args.variants.split(",")
for k in [int(x) for x in args.ks.split(",")]:
    train_dir = os.path.join(tmp, f"train{k}")
    for w in DIGITS:
        os.makedirs(os.path.join(train_dir, w))
        mine = [f for f in files(w) if f.split("_")[1] == args.speaker][:k]
        for f in mine:
            os.symlink(os.path.abspath(os.path.join(args.fsdd, w, f)), os.path.join(train_dir, w, f))
        if args.add:
            for f in os.listdir(os.path.join(args.add, w)):
                os.symlink(os.path.abspath(os.path.join(args.add, w, f)), os.path.join(train_dir, w, "add-" + f))
    for v in variants:
        flags = v.split()
        model = os.path.join(tmp, f"m{k}{v.replace(' ', '').replace('-', '_')}.safetensors")
        t = time.time()
        rep = json.loads(run([args.bin, "retrain", "--model", args.model, "--data", train_dir, "--out", model, "--replay", args.gsc, "--json"] + flags))
        secs = time.time() - t
        ev = new_word_accuracy(model)
        acc_old = gsc_acc(model)
        rows.append((k, v or "frozen", ev["accuracy"], ev["among_new"], ev["n"], acc_old, rep.get("false_accept_unknown"), rep.get("false_accept_noise"), secs))
        print(f"k={k} {v or 'frozen'}: unseen speakers {100*ev['accuracy']:.1f} % ({100*ev['among_new']:.1f} % among the digits; {ev['n']} clips), GSC {100*acc_old:.2f} %, {secs:.1f} s", file=sys.stderr)

pct = lambda v: "n/a" if v is None else f"{100*v:.1f} %"
print(f"| examples per word (speaker {args.speaker}) | retrain | accuracy, 5 unseen speakers | among the digits only | Speech Commands words (base {100*base_acc:.1f} %) | unknown → new word | noise → new word | time |")
print("|---|---|---|---|---|---|---|---|")
for k, v, a, an, n, o, fu, fn, s in rows:
    print(f"| {k} | {v} | {pct(a)} | {pct(an)} | {pct(o)} | {pct(fu)} | {pct(fn)} | {s:.1f} s |")
