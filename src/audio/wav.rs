//! A streaming WAV decoder: RIFF/WAVE with PCM 8/16/24/32-bit integers or
//! 32/64-bit IEEE floats, plain or `WAVE_FORMAT_EXTENSIBLE`, any channel count.
//!
//! Written by hand rather than with `hound` so that every malformed file maps to
//! one precise error (truncated header vs truncated data vs non-finite samples),
//! long files are decoded chunk by chunk, and multi-channel audio is mixed down
//! on the fly.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use super::AudioError;

/// Highest sample rate accepted: anything above is certainly a corrupt header.
pub const MAX_SAMPLE_RATE: u32 = 768_000;
/// Lowest sample rate accepted: below this no speech survives.
pub const MIN_SAMPLE_RATE: u32 = 1_000;
/// Largest float sample magnitude accepted (60 dB above full scale).
pub const MAX_FLOAT_MAGNITUDE: f32 = 1000.0;
/// More channels than this is a corrupt header, not a recording.
pub const MAX_CHANNELS: u16 = 64;
/// `data` sizes from here up are what writers put in a header they cannot come back to
/// fix (sox and espeak-ng 0x7FFFF000, arecord 0x80000000, ffmpeg 0xFFFFFFFF, all writing
/// to a pipe): the samples then run to the end of the stream. A genuine chunk this large
/// (over 18 hours of 16 kHz 16-bit mono) loses only the truncation check on a pipe; in a
/// file that holds it, its size is kept.
pub const UNKNOWN_SIZE_FROM: u64 = 0x7FFF_F000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleFormat {
    Int,
    Float,
}

/// What the `fmt ` chunk says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WavSpec {
    pub channels: u16,
    pub sample_rate: u32,
    /// Bits that carry the sample (`wValidBitsPerSample` in WAVE_FORMAT_EXTENSIBLE).
    pub bits_per_sample: u16,
    /// Bytes each sample occupies: usually `bits_per_sample / 8`, but 24-bit samples
    /// often come in 4-byte containers (ALSA's S24_LE, `arecord -f S24_LE`).
    pub container_bytes: u16,
    pub format: SampleFormat,
}

impl WavSpec {
    fn bytes_per_sample(&self) -> usize {
        self.container_bytes as usize
    }
    fn block_align(&self) -> usize {
        self.bytes_per_sample() * self.channels as usize
    }
}

/// Decodes a WAV stream in chunks of frames, mixing all channels down to mono `f32` in [-1, 1].
pub struct WavReader<R: Read> {
    reader: R,
    spec: WavSpec,
    /// Bytes of sample data left to read, as declared by the header; `u64::MAX` when
    /// the header's size is a streaming writer's placeholder (`UNKNOWN_SIZE_FROM`).
    remaining: u64,
    /// The `data` chunk's size as the header gives it.
    declared: u64,
    /// Sample frames decoded so far (for error messages).
    frames_read: u64,
    raw: Vec<u8>,
}

fn read_exact_or<R: Read>(r: &mut R, buf: &mut [u8], what: &str) -> Result<(), AudioError> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => AudioError::Truncated(what.to_string()),
        _ => AudioError::Io(e),
    })
}

fn u16_le(b: &[u8]) -> u16 {
    u16::from_le_bytes([b[0], b[1]])
}
fn u32_le(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

impl<R: Read> WavReader<R> {
    /// Parses the header up to the start of the `data` chunk.
    pub fn new(mut reader: R) -> Result<Self, AudioError> {
        let mut riff = [0u8; 12];
        let n = read_up_to(&mut reader, &mut riff)?;
        if n == 0 {
            return Err(AudioError::Empty);
        }
        if n >= 4 && &riff[0..4] != b"RIFF" {
            return Err(AudioError::NotWav);
        }
        if n < 12 {
            return Err(AudioError::Truncated("RIFF header".into()));
        }
        if &riff[8..12] != b"WAVE" {
            return Err(AudioError::NotWav);
        }
        let mut spec: Option<WavSpec> = None;
        loop {
            let mut head = [0u8; 8];
            let got = read_up_to(&mut reader, &mut head)?;
            if got < 8 {
                return Err(AudioError::Truncated(if spec.is_none() {
                    "header: no 'fmt ' chunk".into()
                } else {
                    "header: no 'data' chunk".into()
                }));
            }
            let id = [head[0], head[1], head[2], head[3]];
            let size = u32_le(&head[4..8]) as u64;
            match &id {
                b"fmt " => {
                    if !(16..=1024).contains(&size) {
                        return Err(AudioError::BadHeader(format!(
                            "'fmt ' chunk of {size} bytes"
                        )));
                    }
                    let mut fmt = vec![0u8; size as usize + (size as usize & 1)];
                    read_exact_or(&mut reader, &mut fmt, "'fmt ' chunk")?;
                    spec = Some(parse_fmt(&fmt)?);
                }
                b"data" => {
                    let spec = spec.ok_or_else(|| {
                        AudioError::BadHeader("'data' chunk before 'fmt ' chunk".into())
                    })?;
                    let remaining = if size >= UNKNOWN_SIZE_FROM {
                        u64::MAX
                    } else {
                        size
                    };
                    return Ok(WavReader {
                        reader,
                        spec,
                        remaining,
                        declared: size,
                        frames_read: 0,
                        raw: Vec::new(),
                    });
                }
                _ => {
                    // Skip chunks we do not need (LIST, fact, cue...), word-aligned.
                    let skip = size + (size & 1);
                    let copied =
                        std::io::copy(&mut (&mut reader).take(skip), &mut std::io::sink())?;
                    if copied < skip {
                        return Err(AudioError::Truncated(format!(
                            "header: chunk '{}'",
                            String::from_utf8_lossy(&id)
                        )));
                    }
                }
            }
        }
    }

    pub fn spec(&self) -> WavSpec {
        self.spec
    }

    /// Sample frames still declared by the header (`None` when the size is unknown).
    pub fn frames_left(&self) -> Option<u64> {
        (self.remaining != u64::MAX).then(|| self.remaining / self.spec.block_align() as u64)
    }

    /// Appends up to `max_frames` mono frames to `out`. Returns how many were appended;
    /// 0 means the end of the data.
    pub fn read_mono(
        &mut self,
        out: &mut Vec<f32>,
        max_frames: usize,
    ) -> Result<usize, AudioError> {
        let align = self.spec.block_align();
        let want = (max_frames as u64 * align as u64).min(self.remaining) as usize;
        if want == 0 {
            return Ok(0);
        }
        self.raw.resize(want, 0);
        let got = read_up_to(&mut self.reader, &mut self.raw[..want])?;
        if got < want && self.remaining != u64::MAX {
            return Err(AudioError::Truncated(format!(
                "data: header declares more samples than the stream holds (ends after {} frames)",
                self.frames_read + (got / align) as u64
            )));
        }
        let frames = got / align;
        if self.remaining != u64::MAX {
            self.remaining -= (frames * align) as u64;
        } else if got < want {
            self.remaining = 0;
        }
        let channels = self.spec.channels as usize;
        let bps = self.spec.bytes_per_sample();
        let scale = 1.0 / channels as f32;
        out.reserve(frames);
        for (i, frame) in self.raw[..frames * align].chunks_exact(align).enumerate() {
            let mut acc = 0.0f32;
            for s in frame.chunks_exact(bps) {
                acc += decode_sample(s, self.spec.format, self.spec.bits_per_sample);
            }
            let v = acc * scale;
            if !v.is_finite() {
                return Err(AudioError::NonFinite(self.frames_read + i as u64));
            }
            // Float WAVs may exceed full scale a little; far beyond it is garbage that
            // would overflow the power spectrum.
            if v.abs() > MAX_FLOAT_MAGNITUDE {
                return Err(AudioError::OutOfRange(self.frames_read + i as u64, v));
            }
            out.push(v);
        }
        self.frames_read += frames as u64;
        Ok(frames)
    }
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
fn read_up_to<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<usize, AudioError> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(AudioError::Io(e)),
        }
    }
    Ok(n)
}

fn parse_fmt(b: &[u8]) -> Result<WavSpec, AudioError> {
    let mut tag = u16_le(&b[0..2]);
    let channels = u16_le(&b[2..4]);
    let sample_rate = u32_le(&b[4..8]);
    let block_align = u16_le(&b[12..14]);
    let mut bits = u16_le(&b[14..16]);
    if tag == 0xFFFE {
        // WAVE_FORMAT_EXTENSIBLE: the real format tag is the first two bytes of the GUID,
        // and the bits that carry the sample may be fewer than the container's. Writers
        // that leave the valid bits 0 mean the container's (as hound reads them).
        if b.len() < 40 {
            return Err(AudioError::BadHeader("short WAVE_FORMAT_EXTENSIBLE".into()));
        }
        tag = u16_le(&b[24..26]);
        let valid = u16_le(&b[18..20]);
        if valid > 0 {
            if valid > bits {
                return Err(AudioError::BadHeader(format!(
                    "{valid} valid bits in {bits}-bit samples"
                )));
            }
            bits = valid;
        }
    }
    let format = match tag {
        1 => SampleFormat::Int,
        3 => SampleFormat::Float,
        other => {
            return Err(AudioError::Unsupported(format!(
                "encoding 0x{other:04x} (only PCM and IEEE float)"
            )));
        }
    };
    if channels == 0 {
        return Err(AudioError::BadHeader("zero channels".into()));
    }
    if channels > MAX_CHANNELS {
        return Err(AudioError::BadHeader(format!("{channels} channels")));
    }
    if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&sample_rate) {
        return Err(AudioError::BadHeader(format!(
            "sample rate {sample_rate} Hz (accepted: {MIN_SAMPLE_RATE}..={MAX_SAMPLE_RATE})"
        )));
    }
    let ok_bits = match format {
        SampleFormat::Int => matches!(bits, 8 | 16 | 24 | 32),
        SampleFormat::Float => matches!(bits, 32 | 64),
    };
    if !ok_bits {
        return Err(AudioError::Unsupported(format!(
            "{bits}-bit {format:?} samples"
        )));
    }
    let container = block_align / channels;
    // The container holds the sample: as many bytes as its bits, or 24 bits in 4.
    let fits = container * channels == block_align
        && (container * 8 == bits || (format == SampleFormat::Int && bits == 24 && container == 4));
    if !fits {
        return Err(AudioError::BadHeader(format!(
            "block align {block_align} for {channels} channels of {bits} bits"
        )));
    }
    Ok(WavSpec {
        channels,
        sample_rate,
        bits_per_sample: bits,
        container_bytes: container,
        format,
    })
}

#[inline]
fn decode_sample(s: &[u8], format: SampleFormat, bits: u16) -> f32 {
    match (format, s.len()) {
        // 8-bit WAV is unsigned with its zero at 128.
        (SampleFormat::Int, 1) => (s[0] as f32 - 128.0) / 128.0,
        (SampleFormat::Int, 2) => i16::from_le_bytes([s[0], s[1]]) as f32 / 32768.0,
        (SampleFormat::Int, 3) => {
            (i32::from_le_bytes([0, s[0], s[1], s[2]]) >> 8) as f32 / 8_388_608.0
        }
        (SampleFormat::Int, _) if bits == 24 => {
            // 24 bits in the low three bytes of four; the top byte is padding.
            (i32::from_le_bytes([0, s[0], s[1], s[2]]) >> 8) as f32 / 8_388_608.0
        }
        (SampleFormat::Int, _) => {
            i32::from_le_bytes([s[0], s[1], s[2], s[3]]) as f32 / 2_147_483_648.0
        }
        (SampleFormat::Float, 4) => f32::from_le_bytes([s[0], s[1], s[2], s[3]]),
        (SampleFormat::Float, _) => {
            f64::from_le_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]) as f32
        }
    }
}

/// Opens a WAV file and checks up front that the data the header declares is there,
/// so a truncated file fails before any work is done. A placeholder size that the file
/// does hold is taken as the real one, so that chunks after the samples stay unread.
pub fn open(path: &Path) -> Result<WavReader<BufReader<File>>, AudioError> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    if len == 0 {
        return Err(AudioError::Empty);
    }
    let mut buf = BufReader::with_capacity(1 << 16, file);
    let reader = WavReader::new(&mut buf)?;
    let (spec, declared, streamed) = (reader.spec, reader.declared, reader.remaining);
    let pos = buf.stream_position()?;
    let remaining = if pos + declared <= len {
        declared
    } else {
        streamed
    };
    if remaining != u64::MAX && pos + remaining > len {
        return Err(AudioError::Truncated(format!(
            "data: header declares {} bytes of samples, the file holds {}",
            remaining,
            len - pos
        )));
    }
    buf.seek(SeekFrom::Start(pos))?;
    Ok(WavReader {
        reader: buf,
        spec,
        remaining,
        declared,
        frames_read: 0,
        raw: Vec::new(),
    })
}

/// Writes mono 16-bit PCM (used by `record`, tests and fixtures).
pub fn write_pcm16(path: &Path, samples: &[f32], sample_rate: u32) -> std::io::Result<()> {
    let data_len = (samples.len() * 2) as u32;
    let mut b = Vec::with_capacity(44 + data_len as usize);
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data_len).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&sample_rate.to_le_bytes());
    b.extend_from_slice(&(sample_rate * 2).to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&data_len.to_le_bytes());
    for &s in samples {
        let v = (s.clamp(-1.0, 1.0) * 32767.0).round() as i16;
        b.extend_from_slice(&v.to_le_bytes());
    }
    crate::util::atomic_write(path, &b)
}
