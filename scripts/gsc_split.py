"""The speaker split the bundled model was trained with (`spikeword train --split-rule
salted`): the Speech Commands README's hash rule over "spikeword:" + speaker id."""
import hashlib, re

MAX_NUM_WAVS_PER_CLASS = 2**27 - 1


def salted_split(file_name):
    speaker = re.sub(r"_nohash_.*$", "", file_name)
    h = int(hashlib.sha1(("spikeword:" + speaker).encode()).hexdigest(), 16)
    pct = (h % (MAX_NUM_WAVS_PER_CLASS + 1)) * (100.0 / MAX_NUM_WAVS_PER_CLASS)
    return "val" if pct < 10 else "test" if pct < 20 else "train"
