//! The live path's hand-over: a capture side (audio callback or file feeder) pushes
//! chunks into a bounded crossbeam channel without ever blocking or allocating (buffers
//! come from a recycled pool; when none is free or the channel is full the chunk is
//! dropped and counted as an overrun), and a worker side pulls them, mixes nothing
//! more, and resamples to the model rate.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError, bounded};

use super::{AudioError, StreamResampler};

/// Chunks in flight between capture and worker (a few hundred ms at typical sizes).
const SLOTS: usize = 64;
const SLOT_CAPACITY: usize = 8192;

/// The capture side; cheap to clone into an audio callback.
#[derive(Clone)]
pub struct LiveFeed {
    tx: Sender<Vec<f32>>,
    pool: Receiver<Vec<f32>>,
    pool_back: Sender<Vec<f32>>,
    overruns: Arc<AtomicU64>,
    failed: Arc<parking_error::ErrorSlot>,
}

/// The worker side.
pub struct LiveSource {
    rx: Receiver<Vec<f32>>,
    pool_tx: Sender<Vec<f32>>,
    overruns: Arc<AtomicU64>,
    failed: Arc<parking_error::ErrorSlot>,
    resampler: StreamResampler,
    rate: u32,
    /// Whatever must live as long as the source (a cpal stream, a feeder thread).
    _keep: Option<Box<dyn std::any::Any>>,
}

/// What a wait for audio gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Recv {
    Data(usize),
    Timeout,
    End,
}

mod parking_error {
    use std::sync::Mutex;

    /// A device error reported from the audio thread, read by the worker.
    #[derive(Default)]
    pub struct ErrorSlot(Mutex<Option<String>>);

    impl ErrorSlot {
        pub fn set(&self, e: String) {
            if let Ok(mut g) = self.0.try_lock() {
                g.get_or_insert(e);
            }
        }
        pub fn take(&self) -> Option<String> {
            self.0.lock().ok().and_then(|mut g| g.take())
        }
    }
}

/// A connected feed/source pair: `native_rate` is what the feed delivers, `rate` what
/// the source yields.
pub fn channel(native_rate: u32, rate: u32) -> Result<(LiveFeed, LiveSource), AudioError> {
    let (tx, rx) = bounded(SLOTS);
    let (pool_tx, pool) = bounded(SLOTS + 2);
    for _ in 0..SLOTS + 2 {
        let _ = pool_tx.try_send(Vec::with_capacity(SLOT_CAPACITY));
    }
    let overruns = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(parking_error::ErrorSlot::default());
    Ok((
        LiveFeed {
            tx,
            pool,
            pool_back: pool_tx.clone(),
            overruns: overruns.clone(),
            failed: failed.clone(),
        },
        LiveSource {
            rx,
            pool_tx,
            overruns,
            failed,
            resampler: StreamResampler::new(native_rate, rate)?,
            rate,
            _keep: None,
        },
    ))
}

impl LiveFeed {
    /// Called from the audio callback with interleaved samples: mixes down to mono into a
    /// pooled buffer and hands it over. Never blocks; drops and counts on overrun.
    pub fn push_interleaved<T: Copy>(
        &self,
        data: &[T],
        channels: usize,
        to_f32: impl Fn(T) -> f32,
    ) {
        let Ok(mut buf) = self.pool.try_recv() else {
            self.overruns.fetch_add(1, Ordering::Relaxed);
            return;
        };
        buf.clear();
        let ch = channels.max(1);
        let scale = 1.0 / ch as f32;
        for frame in data.chunks_exact(ch) {
            buf.push(frame.iter().map(|&s| to_f32(s)).sum::<f32>() * scale);
        }
        match self.tx.try_send(buf) {
            Ok(()) => {}
            Err(TrySendError::Full(b)) | Err(TrySendError::Disconnected(b)) => {
                // Back to the pool: nothing is freed or allocated in the callback.
                let _ = self.pool_back.try_send(b);
                self.overruns.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Blocking hand-over for sources that may wait (a file fed faster than real time).
    pub fn push_blocking(&self, data: &[f32]) -> bool {
        let mut buf = self.pool.recv().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(data);
        self.tx.send(buf).is_ok()
    }

    /// Reports a device failure to the worker.
    pub fn fail(&self, e: String) {
        self.failed.set(e);
    }

    pub fn overruns(&self) -> u64 {
        self.overruns.load(Ordering::Relaxed)
    }
}

impl LiveSource {
    pub fn keep_alive(&mut self, thing: Box<dyn std::any::Any>) {
        self._keep = Some(thing);
    }

    pub fn sample_rate(&self) -> u32 {
        self.rate
    }

    pub fn overruns(&self) -> u64 {
        self.overruns.load(Ordering::Relaxed)
    }

    /// Waits up to `timeout` for audio; appends samples at the model rate to `out`.
    pub fn recv(&mut self, out: &mut Vec<f32>, timeout: Duration) -> Result<Recv, AudioError> {
        if let Some(e) = self.failed.take() {
            return Err(AudioError::Device(e));
        }
        match self.rx.recv_timeout(timeout) {
            Ok(buf) => {
                let before = out.len();
                self.resampler.push(&buf, out)?;
                let _ = self.pool_tx.try_send(buf);
                Ok(Recv::Data(out.len() - before))
            }
            Err(RecvTimeoutError::Timeout) => Ok(Recv::Timeout),
            Err(RecvTimeoutError::Disconnected) => {
                if let Some(e) = self.failed.take() {
                    return Err(AudioError::Device(e));
                }
                let before = out.len();
                self.resampler.finish(out)?;
                Ok(if out.len() > before {
                    Recv::Data(out.len() - before)
                } else {
                    Recv::End
                })
            }
        }
    }
}

/// Feeds a source (a WAV file or stream) through the live path from its own thread,
/// paced to real time when asked (for demos and tests on machines without a microphone).
pub fn feed_live(
    mut src: impl super::AudioSource + Send + 'static,
    realtime: bool,
    stop: Arc<AtomicBool>,
) -> Result<LiveSource, AudioError> {
    let rate = src.sample_rate();
    let (feed, mut live) = channel(rate, rate)?;
    let handle = std::thread::spawn(move || {
        let t0 = std::time::Instant::now();
        let chunk = (rate / 100) as usize * 4; // 40 ms, like a small audio callback
        let mut sent = 0usize;
        let mut buf = Vec::with_capacity(chunk);
        while !stop.load(Ordering::Relaxed) {
            buf.clear();
            match src.read(&mut buf, chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    feed.fail(e.to_string());
                    break;
                }
            }
            for piece in buf.chunks(chunk) {
                if realtime {
                    let due = Duration::from_secs_f64(sent as f64 / rate as f64);
                    if let Some(wait) = due.checked_sub(t0.elapsed()) {
                        std::thread::sleep(wait);
                    }
                    feed.push_interleaved(piece, 1, |s| s);
                } else if !feed.push_blocking(piece) {
                    return;
                }
                sent += piece.len();
            }
        }
    });
    live.keep_alive(Box::new(handle));
    Ok(live)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overruns_are_counted_not_blocking() {
        let (feed, mut live) = channel(16000, 16000).unwrap();
        let data = vec![0.5f32; 320];
        // Nobody reads: the pool and the channel fill, then pushes are dropped.
        for _ in 0..SLOTS * 3 {
            feed.push_interleaved(&data, 2, |s| s);
        }
        assert!(feed.overruns() >= SLOTS as u64);
        let mut out = Vec::new();
        assert_eq!(
            live.recv(&mut out, Duration::from_millis(10)).unwrap(),
            Recv::Data(160)
        );
        assert!(out.iter().all(|&v| (v - 0.5).abs() < 1e-6));
    }

    #[test]
    fn device_errors_reach_the_worker() {
        let (feed, mut live) = channel(16000, 16000).unwrap();
        feed.fail("device unplugged".into());
        let e = live
            .recv(&mut Vec::new(), Duration::from_millis(10))
            .unwrap_err();
        assert!(e.to_string().contains("unplugged"));
    }
}
