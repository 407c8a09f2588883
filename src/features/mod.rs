//! Audio → log-mel frames, and the per-band normaliser the network expects.

pub mod mel;

pub use mel::{LogMel, MelFrame, StreamingMel, log_mel, log_mel_with};

use crate::config::FeatureConfig;

thread_local! {
    static MEL_FRAME: std::cell::RefCell<Option<MelFrame>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` with this thread's cached FFT plan and filterbank for `cfg` (rebuilt when a
/// different config comes along): batch work on worker threads plans once per thread.
pub fn with_mel_frame<R>(cfg: &FeatureConfig, f: impl FnOnce(&mut MelFrame) -> R) -> R {
    MEL_FRAME.with(|m| {
        let mut m = m.borrow_mut();
        if m.as_ref().is_none_or(|mf| mf.config() != cfg) {
            *m = Some(MelFrame::new(cfg));
        }
        f(m.as_mut().expect("just set"))
    })
}

/// Per-band standardisation with statistics stored in the model.
#[derive(Debug, Clone)]
pub struct Normalizer {
    mean: Vec<f32>,
    inv_std: Vec<f32>,
}

impl Normalizer {
    pub fn new(mean: &[f32], std: &[f32]) -> Self {
        Normalizer {
            mean: mean.to_vec(),
            inv_std: std.iter().map(|s| 1.0 / s.max(1e-3)).collect(),
        }
    }
    pub fn apply(&self, frame: &mut [f32]) {
        for ((x, m), s) in frame.iter_mut().zip(&self.mean).zip(&self.inv_std) {
            *x = (*x - m) * s;
        }
    }
}
