//! WAV decoding of every common kind, and a clear error for every broken one.

use std::path::{Path, PathBuf};

use spikeword::audio::{AudioError, wav};
use spikeword::load_wav;

mod common;

fn header(fmt_tag: u16, channels: u16, rate: u32, bits: u16, data_len: u32) -> Vec<u8> {
    let align = channels * bits / 8;
    let mut b = Vec::new();
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data_len).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&fmt_tag.to_le_bytes());
    b.extend_from_slice(&channels.to_le_bytes());
    b.extend_from_slice(&rate.to_le_bytes());
    b.extend_from_slice(&(rate * align as u32).to_le_bytes());
    b.extend_from_slice(&align.to_le_bytes());
    b.extend_from_slice(&bits.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&data_len.to_le_bytes());
    b
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// A 440 Hz tone encoded with `enc` per sample, `channels` identical channels.
fn tone_file(
    dir: &Path,
    name: &str,
    tag: u16,
    bits: u16,
    channels: u16,
    rate: u32,
    enc: impl Fn(f32) -> Vec<u8>,
) -> PathBuf {
    let n = rate as usize / 2;
    let mut data = Vec::new();
    for i in 0..n {
        let v = 0.5 * (2.0 * std::f32::consts::PI * 440.0 * i as f32 / rate as f32).sin();
        for _ in 0..channels {
            data.extend(enc(v));
        }
    }
    let mut b = header(tag, channels, rate, bits, data.len() as u32);
    b.extend(data);
    write(dir, name, &b)
}

#[test]
fn decodes_every_common_sample_format() {
    let d = tempfile::tempdir().unwrap();
    let files = [
        tone_file(d.path(), "u8.wav", 1, 8, 1, 16000, |v| {
            vec![((v * 127.0) + 128.0).round() as u8]
        }),
        tone_file(d.path(), "s16.wav", 1, 16, 1, 16000, |v| {
            ((v * 32767.0) as i16).to_le_bytes().to_vec()
        }),
        tone_file(d.path(), "s24.wav", 1, 24, 1, 16000, |v| {
            ((v * 8388607.0) as i32).to_le_bytes()[..3].to_vec()
        }),
        tone_file(d.path(), "s32.wav", 1, 32, 1, 16000, |v| {
            ((v as f64 * 2147483647.0) as i32).to_le_bytes().to_vec()
        }),
        tone_file(d.path(), "f32.wav", 3, 32, 1, 16000, |v| {
            v.to_le_bytes().to_vec()
        }),
        tone_file(d.path(), "f64.wav", 3, 64, 1, 16000, |v| {
            (v as f64).to_le_bytes().to_vec()
        }),
        tone_file(d.path(), "stereo.wav", 1, 16, 2, 16000, |v| {
            ((v * 32767.0) as i16).to_le_bytes().to_vec()
        }),
        tone_file(d.path(), "six.wav", 3, 32, 6, 16000, |v| {
            v.to_le_bytes().to_vec()
        }),
    ];
    let reference = load_wav(&files[4], 16000).unwrap();
    assert_eq!(reference.len(), 8000);
    for f in &files {
        let x = load_wav(f, 16000).unwrap();
        assert_eq!(x.len(), 8000, "{}", f.display());
        let err = x
            .iter()
            .zip(&reference)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(err < 0.01, "{}: max error {err}", f.display());
    }
}

#[test]
fn other_rates_are_resampled_to_16k() {
    let d = tempfile::tempdir().unwrap();
    for rate in [8000u32, 22050, 44100, 48000] {
        let f = tone_file(d.path(), &format!("r{rate}.wav"), 1, 16, 1, rate, |v| {
            ((v * 32767.0) as i16).to_le_bytes().to_vec()
        });
        let x = load_wav(&f, 16000).unwrap();
        assert_eq!(x.len(), 8000, "{rate} Hz");
        // The tone survives: compare against an ideal 16 kHz tone in the middle.
        let err = (2000..6000)
            .map(|i| {
                (x[i] - 0.5 * (2.0 * std::f32::consts::PI * 440.0 * i as f32 / 16000.0).sin()).abs()
            })
            .fold(0.0, f32::max);
        // Non-integer ratios leave a sub-sample delay (~0.3 sample at 22.05 kHz).
        assert!(err < 0.05, "{rate} Hz: {err}");
    }
}

#[test]
fn real_8khz_fsdd_recording_decodes() {
    let Some(fsdd) = common::fsdd() else {
        return;
    };
    let mut files: Vec<_> = std::fs::read_dir(fsdd.join("seven"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let f = files
        .first()
        .expect("FSDD has recordings of 'seven'")
        .clone();
    let r = wav::open(&f).unwrap();
    assert_eq!(r.spec().sample_rate, 8000);
    let x = load_wav(&f, 16000).unwrap();
    assert!(x.len() > 1000 && x.iter().any(|v| v.abs() > 0.01));
}

#[test]
fn broken_files_give_precise_errors() {
    let d = tempfile::tempdir().unwrap();
    let good = {
        let mut b = header(1, 1, 16000, 16, 3200);
        b.extend(vec![0u8; 3200]);
        b
    };
    let mut zero_ch = header(1, 0, 16000, 16, 0);
    zero_ch.truncate(44);
    let mut nan = header(3, 1, 16000, 32, 8);
    nan.extend(0.5f32.to_le_bytes());
    nan.extend(f32::NAN.to_le_bytes());
    let mut inf = header(3, 1, 16000, 32, 4);
    inf.extend(f32::INFINITY.to_le_bytes());
    let mut huge = header(3, 1, 16000, 32, 4);
    huge.extend(1e30f32.to_le_bytes());
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("huge.wav", huge, "outside"),
        ("empty.wav", vec![], "empty"),
        ("header.wav", good[..20].to_vec(), "truncated"),
        ("data.wav", good[..1000].to_vec(), "truncated"),
        (
            "text.wav",
            b"hello, this is not audio at all".to_vec(),
            "not a WAV",
        ),
        ("zero.wav", zero_ch, "zero channels"),
        (
            "rate.wav",
            header(1, 1, 4_000_000_000, 16, 0),
            "sample rate",
        ),
        ("tiny_rate.wav", header(1, 1, 3, 16, 0), "sample rate"),
        ("nan.wav", nan, "non-finite"),
        ("inf.wav", inf, "non-finite"),
        ("bits.wav", header(1, 1, 16000, 12, 0), "unsupported"),
        ("mulaw.wav", header(7, 1, 8000, 8, 0), "unsupported"),
    ];
    for (name, bytes, want) in cases {
        let p = write(d.path(), name, &bytes);
        let e: AudioError = load_wav(&p, 16000).expect_err(name);
        let msg = e.to_string();
        assert!(
            msg.to_lowercase().contains(&want.to_lowercase()),
            "{name}: {msg}"
        );
        assert!(!msg.contains('\n'), "{name}: one line");
    }
}

#[test]
fn long_files_stream_in_chunks() {
    // 10 minutes of 16 kHz audio read through the chunked source: constant memory per read.
    use spikeword::audio::{AudioSource, FileSource};
    let d = tempfile::tempdir().unwrap();
    let n = 16000 * 600;
    let mut b = header(1, 1, 16000, 16, (n * 2) as u32);
    b.resize(b.len() + n * 2, 0);
    let p = write(d.path(), "long.wav", &b);
    let mut src = FileSource::open(&p, 16000).unwrap();
    let (mut total, mut buf) = (0, Vec::new());
    loop {
        buf.clear();
        let k = src.read(&mut buf, 4096).unwrap();
        if k == 0 {
            break;
        }
        assert!(buf.len() <= 8192);
        total += k;
    }
    assert_eq!(total, n);
}

#[test]
fn streaming_writers_unknown_sizes_read_to_the_end_and_real_sizes_hold() {
    use spikeword::audio::{AudioSource, WavSource, read_to_end};
    let d = tempfile::tempdir().unwrap();
    let n = 8000usize;
    let samples: Vec<u8> = (0..n as i16)
        .flat_map(|i| (i % 100).to_le_bytes())
        .collect();
    // Placeholders of sox / espeak-ng, arecord, ffmpeg: the samples run to the end,
    // whether they come through a pipe or were saved to a file.
    for placeholder in [0x7FFF_F000u32, 0x8000_0000, 0xFFFF_FFFF] {
        let mut b = header(1, 1, 16000, 16, placeholder);
        b.extend(&samples);
        let mut src = WavSource::from_stream(std::io::Cursor::new(b.clone()), 16000).unwrap();
        assert_eq!(read_to_end(&mut src).unwrap().len(), n, "{placeholder:#x}");
        let p = write(d.path(), "streamed.wav", &b);
        assert_eq!(
            load_wav(&p, 16000).unwrap().len(),
            n,
            "{placeholder:#x} file"
        );
    }
    // A real size is honoured in a stream: chunks after the samples are not audio...
    let mut b = header(1, 1, 16000, 16, (n * 2) as u32);
    b.extend(&samples);
    b.extend(b"LIST\x04\x00\x00\x00INFO");
    let mut src = WavSource::from_stream(std::io::Cursor::new(b.clone()), 16000).unwrap();
    let mut got = Vec::new();
    while src.read(&mut got, 1000).unwrap() > 0 {}
    assert_eq!(got.len(), n);
    // ...and a stream that ends before it is truncated, where it ends.
    b.truncate(44 + n);
    let mut src = WavSource::from_stream(std::io::Cursor::new(b), 16000).unwrap();
    let e = read_to_end(&mut src).unwrap_err().to_string();
    assert!(e.contains("truncated") && e.contains("4000 frames"), "{e}");
}
