"""The speaker split the bundled model was trained with (`spikeword train --split-rule
salted`): the Speech Commands README's hash rule over "spikeword:" + speaker id; and what
the stream scripts share (the keywords, reading a clip as 1 s)."""
import hashlib, re, wave

import numpy as np

KEYWORDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]


def read_clip(path):
    """A 16-bit WAV as float samples, padded or cut to 1 s at 16 kHz."""
    with wave.open(path) as w:
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768
    return np.pad(x, (0, max(0, 16000 - len(x))))[:16000]

MAX_NUM_WAVS_PER_CLASS = 2**27 - 1


def speaker_of(file_name):
    """The speaker id: the file name before `_nohash_`."""
    return re.sub(r"_nohash_.*$", "", file_name)


def salted_split(file_name):
    h = int(hashlib.sha1(("spikeword:" + speaker_of(file_name)).encode()).hexdigest(), 16)
    pct = (h % (MAX_NUM_WAVS_PER_CLASS + 1)) * (100.0 / MAX_NUM_WAVS_PER_CLASS)
    return "val" if pct < 10 else "test" if pct < 20 else "train"
