//! The MLPerf Tiny DS-CNN keyword model (TFLite, run by tract): 12 class probabilities
//! of a 1 s clip.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use tract_tflite::prelude::*;

use super::mfcc::{COEFFS, FRAMES, Mfcc};

/// The teacher's output order (not the order of spikeword's label list).
pub const LABELS: [&str; 12] = [
    "down",
    "go",
    "left",
    "no",
    "off",
    "on",
    "right",
    "stop",
    "up",
    "yes",
    "_silence_",
    "_unknown_",
];

/// The DS-CNN with its front end.
pub struct KeywordTeacher {
    plan: Arc<TypedRunnableModel>,
    mfcc: Mfcc,
}

impl KeywordTeacher {
    pub fn load(path: &Path) -> Result<Self> {
        let plan = tract_tflite::tflite()
            .model_for_path(path)
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .with_context(|| format!("loading the keyword teacher {}", path.display()))?;
        let teacher = KeywordTeacher {
            plan,
            mfcc: Mfcc::new(),
        };
        // A file of another shape fails here, not in the middle of training.
        let p = teacher.probabilities(&[0.0; 16000])?;
        if p.len() != LABELS.len() {
            bail!(
                "{}: {} outputs, the keyword teacher has {}",
                path.display(),
                p.len(),
                LABELS.len()
            );
        }
        Ok(teacher)
    }

    /// The front end's coefficients, `FRAMES × COEFFS`.
    pub fn mfcc(&self, clip: &[f32]) -> Vec<f32> {
        self.mfcc.compute(clip)
    }

    /// Class probabilities of the first second of `clip`, in `LABELS` order.
    pub fn probabilities(&self, clip: &[f32]) -> Result<Vec<f32>> {
        let input = Tensor::from_shape(&[1, FRAMES, COEFFS, 1], &self.mfcc(clip))?;
        let out = self.plan.run(tvec!(input.into()))?;
        let view = out[0].to_plain_array_view::<f32>()?;
        Ok(view.iter().copied().collect())
    }

    /// For each of `labels`, the teacher's output index; every label must be one of the
    /// teacher's classes.
    pub fn mapping(labels: &[String]) -> Result<Vec<usize>> {
        crate::util::label_map(labels, &LABELS, "the keyword teacher")
            .map_err(|e| anyhow::anyhow!("{e}: distil the 12-class task"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_needs_every_label() {
        let twelve: Vec<String> = LABELS.iter().rev().map(|s| s.to_string()).collect();
        let m = KeywordTeacher::mapping(&twelve).unwrap();
        assert_eq!(m[0], 11);
        let bad = vec!["yes".to_string(), "marvin".to_string()];
        assert!(KeywordTeacher::mapping(&bad).is_err());
    }
}
