//! Distillation: the teacher labels exactly the audio the student hears (the augmented,
//! mixed clip), and the student's clip scores learn its softened posteriors together with
//! the true labels. The teacher runs at training time only (cargo feature `teacher`).

use std::path::Path;

use anyhow::Result;
use burn::tensor::{Tensor, activation::log_softmax};

/// How the student learns from a teacher.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DistillConfig {
    /// The keyword teacher's model file (TFLite).
    pub teacher: std::path::PathBuf,
    /// Share of the loss on the teacher's posteriors (the rest on the true labels).
    pub weight: f32,
    /// Temperature on the teacher's log-probabilities and the student's logits.
    pub temperature: f32,
}

type Labeller = dyn Fn(&[f32]) -> Result<Vec<f32>> + Send + Sync;

/// A loaded teacher that gives soft targets in the student's label order.
pub struct Distiller {
    label: Box<Labeller>,
    pub weight: f32,
    pub temperature: f32,
}

impl Distiller {
    #[cfg(feature = "teacher")]
    pub fn load(cfg: &DistillConfig, labels: &[String]) -> Result<Distiller> {
        use crate::teacher::{KeywordTeacher, soften};
        let map = KeywordTeacher::mapping(labels)?;
        let teacher = KeywordTeacher::load(&cfg.teacher)?;
        let t = cfg.temperature;
        Ok(Distiller {
            label: Box::new(move |clip| Ok(soften(&teacher.probabilities(clip)?, &map, t))),
            weight: cfg.weight,
            temperature: t,
        })
    }

    #[cfg(not(feature = "teacher"))]
    pub fn load(cfg: &DistillConfig, _labels: &[String]) -> Result<Distiller> {
        anyhow::bail!(
            "--teacher {}: this build has no teachers (build with --features teacher)",
            cfg.teacher.display()
        )
    }

    /// Soft targets for a 1 s clip.
    pub fn targets(&self, clip: &[f32]) -> Result<Vec<f32>> {
        (self.label)(clip)
    }
}

/// Checks the settings before any data is read.
pub fn check(cfg: &DistillConfig) -> Result<()> {
    if !(0.0..=1.0).contains(&cfg.weight) {
        anyhow::bail!("distillation weight {} is not in 0..1", cfg.weight);
    }
    if !(cfg.temperature.is_finite() && cfg.temperature > 0.0) {
        anyhow::bail!("temperature {} must be positive", cfg.temperature);
    }
    if !Path::new(&cfg.teacher).is_file() {
        anyhow::bail!("teacher {}: no such file", cfg.teacher.display());
    }
    Ok(())
}

/// KL divergence of the student's tempered scores from soft targets `[B, N]` (strictly
/// positive, as softened posteriors are), scaled by T² so its gradients keep their size
/// whatever the temperature (Hinton et al. 2015). Zero when the student matches.
pub fn distillation_loss(logits: Tensor<2>, targets: Tensor<2>, temperature: f32) -> Tensor<1> {
    let logp = log_softmax(logits.div_scalar(temperature), 1);
    let logq = targets.clone().log();
    (targets * (logq - logp))
        .sum_dim(1)
        .mean()
        .mul_scalar(temperature * temperature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    #[test]
    fn distillation_loss_is_zero_at_the_targets_and_positive_elsewhere() {
        let dev = crate::batch::burn_device(crate::batch::DeviceKind::Cpu).unwrap();
        let q = [0.7f32, 0.2, 0.1];
        let targets = || Tensor::<2>::from_data(TensorData::new(q.to_vec(), [1, 3]), &dev);
        let at = |z: Vec<f32>| {
            let l = Tensor::<2>::from_data(TensorData::new(z, [1, 3]), &dev);
            distillation_loss(l, targets(), 2.0).into_scalar::<f32>()
        };
        // Logits whose tempered softmax is q: z = T·ln q (plus any constant).
        let best = at(q.iter().map(|p| 2.0 * p.ln() + 1.0).collect());
        assert!(best.abs() < 1e-5, "{best}");
        assert!(at(vec![0.0, 0.0, 0.0]) > best + 0.1);
        assert!(at(vec![0.0, 3.0, 0.0]) > best + 0.1);
    }
}
