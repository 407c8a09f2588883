//! The source abstraction: anything that yields mono samples at the model rate,
//! chunk by chunk. WAV streams (files, pipes) implement it here; the microphone in `live`.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use super::{AudioError, StreamResampler, wav};

/// A pull-based source of mono `f32` samples at a fixed rate.
pub trait AudioSource {
    /// The rate of the samples this source yields.
    fn sample_rate(&self) -> u32;
    /// Appends up to about `max` samples to `out`; returns how many. 0 = end of stream.
    fn read(&mut self, out: &mut Vec<f32>, max: usize) -> Result<usize, AudioError>;
}

impl<S: AudioSource + ?Sized> AudioSource for Box<S> {
    fn sample_rate(&self) -> u32 {
        (**self).sample_rate()
    }
    fn read(&mut self, out: &mut Vec<f32>, max: usize) -> Result<usize, AudioError> {
        (**self).read(out, max)
    }
}

/// A WAV stream decoded and resampled in chunks (constant memory for any length).
pub struct WavSource<R: Read> {
    reader: wav::WavReader<R>,
    resampler: StreamResampler,
    rate: u32,
    raw: Vec<f32>,
    done: bool,
}

/// A WAV file, its size checked against the header before anything is read.
pub type FileSource = WavSource<BufReader<File>>;

impl FileSource {
    pub fn open(path: &Path, rate: u32) -> Result<Self, AudioError> {
        WavSource::new(wav::open(path)?, rate)
    }
}

impl<R: Read> WavSource<R> {
    /// Reads the header from `stream` (a pipe, standard input). Its size cannot be
    /// checked up front: a stream shorter than its header says fails where it ends.
    pub fn from_stream(stream: R, rate: u32) -> Result<Self, AudioError> {
        WavSource::new(wav::WavReader::new(stream)?, rate)
    }

    fn new(reader: wav::WavReader<R>, rate: u32) -> Result<Self, AudioError> {
        let resampler = StreamResampler::new(reader.spec().sample_rate, rate)?;
        Ok(WavSource {
            reader,
            resampler,
            rate,
            raw: Vec::new(),
            done: false,
        })
    }

    pub fn spec(&self) -> wav::WavSpec {
        self.reader.spec()
    }
}

impl<R: Read> AudioSource for WavSource<R> {
    fn sample_rate(&self) -> u32 {
        self.rate
    }

    fn read(&mut self, out: &mut Vec<f32>, max: usize) -> Result<usize, AudioError> {
        let before = out.len();
        // The resampler buffers internally: loop until it yields or the file ends.
        while out.len() == before && !self.done {
            self.raw.clear();
            let n = self.reader.read_mono(&mut self.raw, max.max(1))?;
            if n == 0 {
                self.resampler.finish(out)?;
                self.done = true;
            } else {
                self.resampler.push(&self.raw, out)?;
            }
        }
        Ok(out.len() - before)
    }
}
