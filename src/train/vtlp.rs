//! Vocal-tract-length perturbation (Jaitly & Hinton, 2013) of a waveform: the spectrum's
//! frequency axis is stretched by a factor α below a boundary and bent back linearly
//! above it so that Nyquist stays in place: formants (and harmonics) move as in a
//! longer or shorter vocal tract while the timing stays, where speed perturbation (tape
//! speed) changes both together. Done on the waveform, not on the student's filterbank,
//! so that a teacher hears the same perturbed voice.

use realfft::RealFftPlanner;
use realfft::num_complex::Complex;

/// FFT size and hop of the short-time analysis (32 ms / 8 ms at 16 kHz).
const N_FFT: usize = 512;
const HOP: usize = N_FFT / 4;
/// The warp is linear up to this frequency (scaled by min(α, 1)), then bends to Nyquist.
const F_HI: f32 = 4800.0;

/// The source frequency that lands on `f_out` after warping by `alpha`.
pub fn source_frequency(f_out: f32, alpha: f32, sr: u32) -> f32 {
    let nyq = sr as f32 / 2.0;
    let knee_out = (F_HI * alpha.min(1.0)).min(0.9 * nyq);
    let knee_src = knee_out / alpha;
    if f_out <= knee_out {
        f_out / alpha
    } else {
        nyq - (nyq - f_out) * (nyq - knee_src) / (nyq - knee_out)
    }
}

/// `x` with its spectral envelope warped by `alpha` (1.0 returns it unchanged; 0.9–1.1
/// is the usual range). Same length.
pub fn warp(x: &[f32], alpha: f32, sr: u32) -> Vec<f32> {
    if x.is_empty() || (alpha - 1.0).abs() < 1e-6 {
        return x.to_vec();
    }
    resynthesize(x, &bin_map(alpha, sr))
}

/// Short-time analysis, each frame's bins read through `map`, overlap-add.
fn resynthesize(x: &[f32], map: &[f32]) -> Vec<f32> {
    let window: Vec<f32> = (0..N_FFT)
        .map(|i| 0.5 - 0.5 * (2.0 * std::f32::consts::PI * i as f32 / N_FFT as f32).cos())
        .collect();
    let mut planner = RealFftPlanner::<f32>::new();
    let (fwd, inv) = (
        planner.plan_fft_forward(N_FFT),
        planner.plan_fft_inverse(N_FFT),
    );
    // Zero padding of one frame on each side: every sample is covered by full overlaps.
    let mut padded = vec![0.0; N_FFT];
    padded.extend_from_slice(x);
    padded.resize(padded.len() + 2 * N_FFT, 0.0);
    let n_frames = (padded.len() - N_FFT) / HOP + 1;
    let mut out = vec![0.0f32; padded.len()];
    let mut norm = vec![0.0f32; padded.len()];
    let (mut frame, mut spec) = (fwd.make_input_vec(), fwd.make_output_vec());
    let mut warped = spec.clone();
    let mut phases = Phases {
        source: vec![0.0; spec.len()],
        output: vec![0.0; spec.len()],
        started: false,
    };
    for t in 0..n_frames {
        let s = t * HOP;
        for ((f, v), w) in frame.iter_mut().zip(&padded[s..s + N_FFT]).zip(&window) {
            *f = v * w;
        }
        fwd.process(&mut frame, &mut spec).expect("FFT sizes match");
        warp_frame(&spec, map, &mut phases, &mut warped);
        inv.process(&mut warped, &mut frame)
            .expect("FFT sizes match");
        for (i, (v, w)) in frame.iter().zip(&window).enumerate() {
            out[s + i] += v * w / N_FFT as f32;
            norm[s + i] += w * w;
        }
    }
    out[N_FFT..N_FFT + x.len()]
        .iter()
        .zip(&norm[N_FFT..])
        .map(|(v, n)| if *n > 1e-6 { v / n } else { 0.0 })
        .collect()
}

/// For each output bin, the (fractional) source bin it reads.
fn bin_map(alpha: f32, sr: u32) -> Vec<f32> {
    let bins = N_FFT / 2 + 1;
    let bin_hz = sr as f32 / N_FFT as f32;
    (0..bins)
        .map(|k| {
            (source_frequency(k as f32 * bin_hz, alpha, sr) / bin_hz).clamp(0.0, (bins - 1) as f32)
        })
        .collect()
}

/// A phase vocoder's memory between frames: each source bin's last phase, each output
/// bin's running phase.
struct Phases {
    source: Vec<f32>,
    output: Vec<f32>,
    /// Whether a frame was seen: the first one copies its phases.
    started: bool,
}

/// Magnitudes interpolated between the two source bins; each output bin's phase advances
/// at its source's instantaneous frequency times the warp there, so that a moved partial
/// stays one sinusoid across frames (copying phases would beat at the old frequency).
fn warp_frame(spec: &[Complex<f32>], map: &[f32], ph: &mut Phases, out: &mut [Complex<f32>]) {
    use std::f32::consts::{PI, TAU};
    let last = spec.len() - 1;
    let hop_phase = |i: usize| TAU * (i * HOP) as f32 / N_FFT as f32;
    // Instantaneous frequency of each source bin, in radians per hop.
    let inst: Vec<f32> = spec
        .iter()
        .zip(&mut ph.source)
        .enumerate()
        .map(|(i, (c, prev))| {
            let phase = c.arg();
            let dev = phase - *prev - hop_phase(i);
            *prev = phase;
            hop_phase(i) + (dev + PI).rem_euclid(TAU) - PI
        })
        .collect();
    for (k, ((o, &src), acc)) in out.iter_mut().zip(map).zip(&mut ph.output).enumerate() {
        let (i, frac) = (src.floor() as usize, src.fract());
        let j = (i + 1).min(last);
        let mag = spec[i].norm() * (1.0 - frac) + spec[j].norm() * frac;
        let near = if frac < 0.5 { i } else { j };
        let ratio = if src > 1e-3 { k as f32 / src } else { 1.0 };
        *acc = if ph.started {
            (*acc + inst[near] * ratio).rem_euclid(TAU)
        } else {
            spec[near].arg()
        };
        *o = Complex::from_polar(mag, *acc);
    }
    ph.started = true;
    // The inverse real FFT wants real DC and Nyquist bins.
    out[0].im = 0.0;
    out[last].im = 0.0;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(hz: f32, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| 0.5 * (2.0 * std::f32::consts::PI * hz * i as f32 / 16000.0).sin())
            .collect()
    }

    /// The strongest frequency of `x` (Hz), from one long FFT.
    fn peak_hz(x: &[f32]) -> f32 {
        let mut planner = RealFftPlanner::<f32>::new();
        let fft = planner.plan_fft_forward(x.len());
        let (mut input, mut spec) = (x.to_vec(), fft.make_output_vec());
        fft.process(&mut input, &mut spec).unwrap();
        let k = (1..spec.len())
            .max_by(|a, b| spec[*a].norm().total_cmp(&spec[*b].norm()))
            .unwrap();
        k as f32 * 16000.0 / x.len() as f32
    }

    #[test]
    fn the_warp_is_linear_below_the_knee_and_keeps_nyquist() {
        assert!((source_frequency(1000.0, 1.1, 16000) - 1000.0 / 1.1).abs() < 1e-3);
        assert!((source_frequency(1000.0, 0.9, 16000) - 1000.0 / 0.9).abs() < 1e-3);
        for a in [0.9, 1.0, 1.1] {
            assert!((source_frequency(8000.0, a, 16000) - 8000.0).abs() < 1e-2);
        }
        // Monotonic: no two output bins read the source in reverse order.
        let m = bin_map(1.1, 16000);
        assert!(m.windows(2).all(|w| w[1] >= w[0]));
    }

    #[test]
    fn a_tone_moves_by_alpha_and_keeps_its_length_and_level() {
        let x = tone(1000.0, 16000);
        for alpha in [0.9f32, 1.1] {
            let y = warp(&x, alpha, 16000);
            assert_eq!(y.len(), x.len());
            let f = peak_hz(&y);
            assert!(
                (f - 1000.0 * alpha).abs() < 15.0,
                "alpha {alpha}: peak at {f} Hz"
            );
            let rms = |v: &[f32]| (v.iter().map(|s| s * s).sum::<f32>() / v.len() as f32).sqrt();
            let ratio = rms(&y[800..15200]) / rms(&x[800..15200]);
            assert!(
                (0.7..1.3).contains(&ratio),
                "alpha {alpha}: level ratio {ratio}"
            );
        }
    }

    #[test]
    fn resynthesis_through_the_identity_map_gives_the_signal_back() {
        // The analysis, the phase vocoder and overlap-add alone lose nothing.
        let x: Vec<f32> = tone(440.0, 8000)
            .iter()
            .zip(tone(2300.0, 8000))
            .map(|(a, b)| a + 0.5 * b)
            .collect();
        let y = resynthesize(&x, &bin_map(1.0, 16000));
        let err = x
            .iter()
            .zip(&y)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(err < 0.02, "max error {err}");
    }

    #[test]
    fn alpha_one_is_the_identity() {
        let x = tone(440.0, 4000);
        assert_eq!(warp(&x, 1.0, 16000), x);
    }
}
