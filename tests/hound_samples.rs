//! hound's WAV test samples (github.com/ruuda/hound, `testsamples/`, Apache-2.0; copied
//! into tests/fixtures/hound with its licence): a decoder suite written elsewhere. Each
//! valid file decodes to the exact samples hound's own tests expect (mixed to mono here);
//! every file of its fuzz corpus gives samples or an error, never a panic.

use std::path::{Path, PathBuf};

use spikeword::audio::AudioError;
use spikeword::audio::wav::{self, SampleFormat};

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/hound")
        .join(name)
}

/// All mono frames of a file, with its spec.
fn decode(name: &str) -> (wav::WavSpec, Vec<f32>) {
    let mut r = wav::open(&sample(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut out = Vec::new();
    while r
        .read_mono(&mut out, 1024)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        > 0
    {}
    (r.spec(), out)
}

/// hound's integer samples (interleaved) as the mono mixdown the decoder gives.
fn expected_mono(ints: &[i64], channels: usize, full_scale: f64) -> Vec<f64> {
    ints.chunks(channels)
        .map(|f| f.iter().map(|&v| v as f64 / full_scale).sum::<f64>() / channels as f64)
        .collect()
}

fn check(name: &str, rate: u32, channels: u16, bits: u16, ints: &[i64]) {
    let (spec, got) = decode(name);
    assert_eq!(
        (
            spec.sample_rate,
            spec.channels,
            spec.bits_per_sample,
            spec.format
        ),
        (rate, channels, bits, SampleFormat::Int),
        "{name}"
    );
    let full_scale = if bits == 8 {
        128.0
    } else {
        (1u64 << (bits - 1)) as f64
    };
    let want = expected_mono(ints, channels as usize, full_scale);
    assert_eq!(got.len(), want.len(), "{name}: frames");
    for (g, w) in got.iter().zip(&want) {
        assert!((*g as f64 - w).abs() < 1e-6, "{name}: {g} vs {w}");
    }
}

#[test]
fn pcm_16_bit_in_every_header_form() {
    for name in [
        "pcmwaveformat-16bit-44100Hz-mono.wav",
        "waveformatex-16bit-44100Hz-mono.wav",
    ] {
        check(name, 44100, 1, 16, &[2, -3, 5, -7]);
    }
    check(
        "waveformatex-16bit-44100Hz-stereo.wav",
        44100,
        2,
        16,
        &[2, -3, 5, -7, 11, -13, 17, -19],
    );
}

#[test]
fn unknown_chunks_between_fmt_and_data_are_skipped() {
    for name in [
        "pcmwaveformat-16bit-44100Hz-mono-extra.wav",
        "waveformatex-16bit-44100Hz-mono-extra.wav",
    ] {
        let (spec, got) = decode(name);
        assert_eq!((spec.sample_rate, spec.channels), (44100, 1), "{name}");
        assert!((got[0] - 2.0 / 32768.0).abs() < 1e-9, "{name}: {}", got[0]);
    }
}

#[test]
fn eight_bit_unsigned_samples() {
    check(
        "pcmwaveformat-8bit-44100Hz-mono.wav",
        44100,
        1,
        8,
        &[19, -53, 89, -127],
    );
    check(
        "waveformatex-8bit-11025Hz-mono.wav",
        11025,
        1,
        8,
        &[-128; 4],
    );
}

#[test]
fn twenty_four_bit_samples_in_three_and_four_byte_containers() {
    check(
        "waveformatextensible-24bit-192kHz-mono.wav",
        192_000,
        1,
        24,
        &[-17, 4_194_319, -6_291_437, 8_355_817],
    );
    // 24-bit samples in 4-byte containers are valid WAVE (`arecord -f S24_LE`), in the
    // plain and the extensible header.
    for name in [
        "pcmwaveformat-24bit-4byte-48kHz-stereo.wav",
        "waveformatextensible-24bit-4byte-48kHz-stereo.wav",
    ] {
        check(name, 48_000, 2, 24, &[-96, 23_052, 8_388_607, -8_360_672]);
        assert_eq!(decode(name).0.container_bytes, 4, "{name}");
    }
}

#[test]
fn thirty_two_bit_samples_and_a_zero_valid_bits_header() {
    let ints = [19, -229_373, 33_587_161, -2_147_483_497];
    check(
        "waveformatextensible-32bit-48kHz-stereo.wav",
        48_000,
        2,
        32,
        &ints,
    );
    // Valid bits 0 in the extensible header: the container's 32 bits (as hound reads it).
    check("nonstandard-02.wav", 48_000, 2, 32, &ints);
}

#[test]
fn a_nonstandard_24_bit_header_from_the_wild() {
    let (spec, got) = decode("nonstandard-01.wav");
    assert_eq!(spec.bits_per_sample, 24);
    assert_eq!(got, vec![0.0; got.len()]);
    assert!(!got.is_empty());
}

#[test]
fn float_samples_far_beyond_full_scale_are_refused_with_their_position() {
    // hound's float samples are 2, 3, -16411 and 1019: test values, not audio. Beyond
    // `MAX_FLOAT_MAGNITUDE` a float WAV is taken for garbage, with a clear error.
    for name in [
        "waveformatex-ieeefloat-44100Hz-mono.wav",
        "waveformatextensible-ieeefloat-44100Hz-mono.wav",
    ] {
        let mut r = wav::open(&sample(name)).unwrap();
        assert_eq!(r.spec().format, SampleFormat::Float);
        let mut out = Vec::new();
        match r.read_mono(&mut out, 1024) {
            Err(AudioError::OutOfRange(2, v)) => assert_eq!(v, -16411.0, "{name}"),
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn a_real_recording_decodes() {
    let (spec, got) = decode("pop.wav");
    assert!(spec.sample_rate >= 8000 && !got.is_empty());
    assert!(got.iter().all(|v| v.is_finite() && v.abs() <= 1.0));
}

#[test]
fn the_fuzz_corpus_gives_samples_or_errors() {
    let dir = sample("fuzz");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        n += 1;
        let Ok(mut r) = wav::open(&p) else { continue };
        let mut out = Vec::new();
        while let Ok(k) = r.read_mono(&mut out, 1024) {
            if k == 0 {
                break;
            }
        }
        assert!(out.iter().all(|v| v.is_finite()), "{}", p.display());
    }
    assert_eq!(n, 6, "hound's six fuzz files");
}
