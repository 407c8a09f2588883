#!/usr/bin/env python3
"""Generate the log-mel reference fixtures used by spikeword's feature tests.

Run from the crate root (/work/main):

    pip install librosa soundfile numpy
    python3 scripts/librosa_reference.py

Writes into tests/fixtures/:
  chirp.wav            1.0 s, 16 kHz mono PCM_16 logarithmic chirp 100 -> 6000 Hz, amplitude 0.5
  yes.wav              copy of the first (sorted) clip of <data>/yes/ from Google Speech Commands
  chirp_logmel.json    librosa log-mel of chirp.wav (frames x bands)
  yes_logmel.json      librosa log-mel of yes.wav (frames x bands)
  README.md            what these files are and where they come from

The log-mel is exactly
  M = librosa.feature.melspectrogram(y, sr=16000, n_fft=480, hop_length=160, win_length=480,
        window='hann', center=False, power=2.0, n_mels=40, fmin=20.0, fmax=4000.0,
        htk=False, norm='slaney')
  L = log(1e-6 + M).T
with y = int16 samples / 32768.0 cast to float64.
"""

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import soundfile as sf
import librosa

SR = 16000
N_FFT = 480
HOP = 160
N_MELS = 40
FMIN = 20.0
FMAX = 4000.0
LOG_EPS = 1e-6

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "speech_commands"


def load_wav(path):
    """int16 PCM -> float64 samples in [-1, 1) (int16 / 32768)."""
    data, sr = sf.read(str(path), dtype="int16", always_2d=False)
    assert sr == SR, f"{path}: sample rate {sr}, expected {SR}"
    assert data.ndim == 1, f"{path}: expected mono"
    return (data.astype(np.float32) / np.float32(32768.0)).astype(np.float64)


def logmel(y):
    m = librosa.feature.melspectrogram(
        y=np.asarray(y, dtype=np.float64), sr=SR, n_fft=N_FFT, hop_length=HOP,
        win_length=N_FFT, window="hann", center=False, power=2.0, n_mels=N_MELS,
        fmin=FMIN, fmax=FMAX, htk=False, norm="slaney",
    )
    return np.log(LOG_EPS + m).T  # frames x bands


def make_chirp(path):
    """Logarithmic (exponential) sine sweep 100 -> 6000 Hz over exactly 1 s.

    Instantaneous frequency f(t) = f0 * k**(t/T), k = f1/f0; phase
    phi(t) = 2*pi*f0*T/ln(k) * (k**(t/T) - 1) (same as scipy.signal.chirp
    method='logarithmic', but with sin so the signal starts at 0).
    """
    f0, f1, dur, amp = 100.0, 6000.0, 1.0, 0.5
    n = int(round(SR * dur))
    t = np.arange(n, dtype=np.float64) / SR
    k = f1 / f0
    phase = 2.0 * np.pi * f0 * dur / np.log(k) * (np.power(k, t / dur) - 1.0)
    x = amp * np.sin(phase)
    pcm = np.round(x * 32767.0).astype(np.int16)
    sf.write(str(path), pcm, SR, subtype="PCM_16")


def write_json(path, wav_name, L):
    rows = [[float(f"{v:.8g}") for v in row] for row in L]
    obj = {
        "file": wav_name,
        "sample_rate": SR,
        "n_fft": N_FFT,
        "hop": HOP,
        "n_mels": N_MELS,
        "fmin": FMIN,
        "fmax": FMAX,
        "log_eps": LOG_EPS,
        "librosa_version": librosa.__version__,
        "logmel": rows,
    }
    with open(path, "w") as f:
        # one frame per line keeps diffs readable
        f.write("{\n")
        for key in list(obj)[:-1]:
            f.write(f"  {json.dumps(key)}: {json.dumps(obj[key])},\n")
        f.write('  "logmel": [\n')
        f.write(",\n".join("    " + json.dumps(r) for r in rows))
        f.write("\n  ]\n}\n")


README = """# Test fixtures

Regenerate everything here from the crate root with:

    pip install librosa soundfile numpy
    python3 scripts/librosa_reference.py

(generated with librosa {librosa_version}, numpy {numpy_version}, soundfile {soundfile_version})

| file | what |
|------|------|
| `chirp.wav` | synthetic: 1.0 s, 16 kHz mono 16-bit PCM, logarithmic sine sweep 100 Hz -> 6000 Hz, amplitude 0.5 (`round(0.5*sin(phi(t))*32767)`) |
| `yes.wav` | a real clip of the word "yes", copied unchanged (16 kHz mono 16-bit PCM, 1 s) |
| `chirp_logmel.json` | librosa log-mel reference for `chirp.wav` |
| `yes_logmel.json` | librosa log-mel reference for `yes.wav` |

## Log-mel definition

Samples are read as int16 and divided by 32768.0, then cast to float64:

```python
M = librosa.feature.melspectrogram(y=y, sr=16000, n_fft=480, hop_length=160, win_length=480,
                                   window='hann', center=False, power=2.0, n_mels=40,
                                   fmin=20.0, fmax=4000.0, htk=False, norm='slaney')
L = np.log(1e-6 + M).T          # frames x bands; 1 s -> 98 x 40
```

Notes for reimplementers: librosa's `'hann'` window here is the *periodic* Hann
(`0.5 - 0.5*cos(2*pi*n/480)`, n = 0..479); no centering/padding, so frame i covers samples
`[160*i, 160*i + 480)`; the power spectrum is `|rfft|^2` with no scaling; mel scale is Slaney's
(linear below 1 kHz, logarithmic above; `htk=False`); filters are Slaney area-normalised
(`2 / (f_hi - f_lo)`); librosa builds the filter bank in float32 by default.

The JSON keys are `file`, `sample_rate`, `n_fft`, `hop`, `n_mels`, `fmin`, `fmax`, `log_eps`,
`librosa_version` and `logmel` (list of frames, each a list of 40 floats, 8 significant digits).

## Attribution

`yes.wav` is `yes/{yes_name}` from the Google Speech Commands dataset
(Pete Warden, "Speech Commands: A Dataset for Limited-Vocabulary Speech Recognition",
arXiv:1804.03209, 2018), licensed under CC BY 4.0
(https://creativecommons.org/licenses/by/4.0/). It is included unmodified, renamed to `yes.wav`.
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA,
                    help="Speech Commands root (default: ../shared/data/speech_commands)")
    ap.add_argument("--out", type=Path, default=ROOT / "tests" / "fixtures")
    args = ap.parse_args()

    out = args.out
    out.mkdir(parents=True, exist_ok=True)

    make_chirp(out / "chirp.wav")

    yes_src = sorted((args.data / "yes").glob("*.wav"))[0]
    shutil.copyfile(yes_src, out / "yes.wav")

    for name in ("chirp", "yes"):
        wav = out / f"{name}.wav"
        L = logmel(load_wav(wav))
        assert L.shape == (98, N_MELS), L.shape
        write_json(out / f"{name}_logmel.json", wav.name, L)
        print(f"{name}: {L.shape[0]} frames x {L.shape[1]} bands, "
              f"min {L.min():.4f} max {L.max():.4f}")

    (out / "README.md").write_text(README.format(
        librosa_version=librosa.__version__, numpy_version=np.__version__,
        soundfile_version=sf.__version__, yes_name=yes_src.name))
    print(f"wrote fixtures to {out} (librosa {librosa.__version__})")


if __name__ == "__main__":
    main()
