//! Google's speech_embedding (ONNX, run by tract): one 96-d vector per 80 ms over
//! ~775 ms windows of raw 16 kHz audio.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use tract_onnx::prelude::*;

pub const DIM: usize = 96;
/// Shortest input with one window.
pub const MIN_SAMPLES: usize = 12_400;

/// Windows for `n` samples: W = floor((floor((n−400)/160)+1−76)/8)+1.
pub fn windows_for(n: usize) -> usize {
    if n < MIN_SAMPLES {
        return 0;
    }
    ((n - 400) / 160 + 1 - 76) / 8 + 1
}

/// The model with one optimised plan per input length (its graph cannot take a symbolic
/// length), built on first use.
pub struct SpeechEmbedding {
    path: PathBuf,
    proto: InferenceModel,
    plans: Mutex<HashMap<usize, Arc<TypedRunnableModel>>>,
}

impl SpeechEmbedding {
    pub fn load(path: &Path) -> Result<Self> {
        let proto = tract_onnx::onnx()
            .model_for_path(path)
            .with_context(|| format!("loading the speech embedding {}", path.display()))?;
        let e = SpeechEmbedding {
            path: path.to_path_buf(),
            proto,
            plans: Mutex::new(HashMap::new()),
        };
        e.plan(16_000)?;
        Ok(e)
    }

    fn plan(&self, n: usize) -> Result<Arc<TypedRunnableModel>> {
        if let Some(p) = self.plans.lock().expect("no panics while held").get(&n) {
            return Ok(p.clone());
        }
        let plan = self
            .proto
            .clone()
            .with_input_fact(0, f32::fact([1, n]).into())
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .with_context(|| format!("{}: planning for {n} samples", self.path.display()))?;
        self.plans
            .lock()
            .expect("no panics while held")
            .insert(n, plan.clone());
        Ok(plan)
    }

    /// The vectors of `audio` (16 kHz, in [-1, 1]), `windows_for(len)` × `DIM`.
    pub fn embed(&self, audio: &[f32]) -> Result<Vec<[f32; DIM]>> {
        let w = windows_for(audio.len());
        if w == 0 {
            bail!(
                "{} samples: the speech embedding needs at least {MIN_SAMPLES}",
                audio.len()
            );
        }
        let input = Tensor::from_shape(&[1, audio.len()], audio)?;
        let out = self.plan(audio.len())?.run(tvec!(input.into()))?;
        let v = out[0].to_plain_array_view::<f32>()?;
        if v.len() != w * DIM {
            bail!(
                "the speech embedding gave {} values, not {w}×{DIM}",
                v.len()
            );
        }
        let flat: Vec<f32> = v.iter().copied().collect();
        Ok(flat
            .chunks_exact(DIM)
            .map(|c| std::array::from_fn(|i| c[i]))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn window_count_formula() {
        assert_eq!(super::windows_for(12_400), 1);
        assert_eq!(super::windows_for(16_000), 3);
        assert_eq!(super::windows_for(32_000), 16);
        assert_eq!(super::windows_for(12_399), 0);
    }
}
