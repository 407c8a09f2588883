#!/usr/bin/env python3
"""Refreshes the command outputs shown in README.md so they stay true.

Each block looks like

    <!-- run: spikeword detect assets/demo_words.wav -->
    ```text
    ...replaced by the command's stdout and stderr...
    ```
    <!-- end -->

`spikeword` means target/release/spikeword (build it first). Run from the crate root:
    python3 scripts/update_readme.py
"""
import os, re, shlex, subprocess

# The commands that replay Speech Commands (retrain) find it where the tests do.
ENV = dict(os.environ)
ENV.setdefault("SPIKEWORD_DATA", "../shared/data/speech_commands")

pat = re.compile(r"(<!-- run: (.*?) -->\n)```text\n.*?```\n(<!-- end -->)", re.S)

def refresh(m):
    cmd = m.group(2)
    argv = shlex.split(cmd)
    if argv[0] == "spikeword":
        argv[0] = "target/release/spikeword"
    r = subprocess.run(argv, capture_output=True, text=True, env=ENV)
    out = (r.stdout + r.stderr).rstrip("\n")
    # Progress bars and terminal control characters do not belong in a document.
    out = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", out)
    out = "\n".join(l for l in out.split("\n") if "\r" not in l)
    print(f"$ {cmd}  (exit {r.returncode})")
    return f"{m.group(1)}```text\n$ {cmd}\n{out}\n```\n{m.group(3)}"

for doc in ["README.md", "models/README.md"]:
    text = open(doc).read()
    open(doc, "w").write(pat.sub(refresh, text))
