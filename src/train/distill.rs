//! Distillation: the teachers label exactly the audio the student hears (the augmented,
//! mixed clip), and the student's clip scores learn their softened posteriors together
//! with the true labels. A teacher is the keyword model (TFLite, run at training time only:
//! cargo feature `teacher`) or a spikeword model file, e.g. an ensemble of wider networks
//! teaching a small one; several teach the mean of their softened posteriors.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use anyhow::{Context, Result};
use burn::tensor::{Tensor, activation::log_softmax};

use crate::features::MelFrame;
use crate::model::Model;

/// How the student learns from its teachers.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DistillConfig {
    /// The teachers' model files: the keyword teacher (TFLite) or spikeword models
    /// (`.safetensors`). Runs of earlier versions recorded one `teacher`.
    #[serde(alias = "teacher", deserialize_with = "one_or_more")]
    pub teachers: Vec<PathBuf>,
    /// Share of the loss on the teachers' posteriors (the rest on the true labels).
    pub weight: f32,
    /// Temperature on the teachers' log-probabilities and the student's logits.
    pub temperature: f32,
}

/// A path or a list of paths.
fn one_or_more<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<PathBuf>, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum OneOrMore {
        One(PathBuf),
        More(Vec<PathBuf>),
    }
    Ok(match serde::Deserialize::deserialize(d)? {
        OneOrMore::One(p) => vec![p],
        OneOrMore::More(v) => v,
    })
}

type Labeller = dyn Fn(&[f32]) -> Result<Vec<f32>> + Send + Sync;

/// Loaded teachers that give soft targets in the student's label order.
pub struct Distiller {
    teachers: Vec<Box<Labeller>>,
    pub weight: f32,
    pub temperature: f32,
}

impl Distiller {
    /// The teachers of `cfg` for a student of `labels` hearing clips at `rate` Hz.
    pub fn load(cfg: &DistillConfig, labels: &[String], rate: u32) -> Result<Distiller> {
        let t = cfg.temperature;
        let teachers = cfg
            .teachers
            .iter()
            .map(|p| {
                if is_spikeword_model(p) {
                    spiking_teacher(p, labels, rate, t)
                } else {
                    keyword_teacher(p, labels, t)
                }
            })
            .collect::<Result<_>>()?;
        Ok(Distiller {
            teachers,
            weight: cfg.weight,
            temperature: t,
        })
    }

    /// Soft targets for a 1 s clip: the mean of the teachers' softened posteriors.
    pub fn targets(&self, clip: &[f32]) -> Result<Vec<f32>> {
        let mut mean = Vec::new();
        for label in &self.teachers {
            let q = label(clip)?;
            mean.resize(q.len(), 0.0);
            mean.iter_mut().zip(&q).for_each(|(m, v)| *m += v);
        }
        let n = self.teachers.len() as f32;
        Ok(mean.into_iter().map(|m| m / n).collect())
    }
}

/// A spikeword model file (by its extension; anything else is taken for the keyword teacher).
fn is_spikeword_model(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "safetensors")
}

#[cfg(feature = "teacher")]
fn keyword_teacher(p: &Path, labels: &[String], t: f32) -> Result<Box<Labeller>> {
    use crate::teacher::KeywordTeacher;
    let map = KeywordTeacher::mapping(labels)?;
    let teacher = KeywordTeacher::load(p)?;
    Ok(Box::new(move |clip| {
        Ok(soften(&teacher.probabilities(clip)?, &map, t))
    }))
}

#[cfg(not(feature = "teacher"))]
fn keyword_teacher(p: &Path, _labels: &[String], _t: f32) -> Result<Box<Labeller>> {
    anyhow::bail!(
        "--teacher {}: this build runs no TFLite teachers (build with --features teacher; \
         spikeword models, .safetensors, teach in any build)",
        p.display()
    )
}

/// A spikeword model as a teacher: its clip probabilities, as `classify` gives them, for
/// every label of the student.
fn spiking_teacher(p: &Path, labels: &[String], rate: u32, t: f32) -> Result<Box<Labeller>> {
    let model = Model::load(p).with_context(|| format!("teacher {}", p.display()))?;
    let map = crate::util::label_map(labels, model.labels(), &format!("teacher {}", p.display()))?;
    let own = model.config.features.sample_rate;
    if own != rate {
        anyhow::bail!(
            "teacher {} hears {own} Hz, the student {rate} Hz",
            p.display()
        );
    }
    // Feature extractors reused across calls (the student's thread-local one is borrowed
    // while the teacher runs).
    let pool: Mutex<Vec<MelFrame>> = Mutex::new(Vec::new());
    Ok(Box::new(move |clip| {
        let reused = pooled(&pool).pop();
        let mut mf = reused.unwrap_or_else(|| MelFrame::new(&model.config.features));
        let probs = model.classify(&mut mf, clip).probs;
        pooled(&pool).push(mf);
        Ok(soften(&probs, &map, t))
    }))
}

fn pooled(pool: &Mutex<Vec<MelFrame>>) -> MutexGuard<'_, Vec<MelFrame>> {
    pool.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Teacher probabilities in the student's label order (`map[i]`: the teacher's index of
/// label `i`), softened: a temperature on log-probabilities (a teacher certain to four
/// digits teaches nothing about what a clip resembles).
pub fn soften(probs: &[f32], map: &[usize], temperature: f32) -> Vec<f32> {
    let logits: Vec<f32> = map
        .iter()
        .map(|&i| (probs[i].max(1e-8)).ln() / temperature)
        .collect();
    let max = logits.iter().cloned().fold(f32::MIN, f32::max);
    let e: Vec<f32> = logits.iter().map(|z| (z - max).exp()).collect();
    let sum: f32 = e.iter().sum();
    e.iter().map(|v| v / sum).collect()
}

/// How the student's embedding head learns a general speech embedding.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct EmbedConfig {
    /// The speech embedding's model file (ONNX).
    pub teacher: std::path::PathBuf,
    /// Weight of the embedding loss (1 − cosine similarity) against the clip loss.
    pub weight: f32,
}

type Embedding = dyn Fn(&[f32]) -> Result<Vec<f32>> + Send + Sync;

/// A loaded speech embedding that gives the vectors of a 1 s clip.
pub struct Embedder {
    embed: Box<Embedding>,
    /// Vectors per clip and their size.
    pub windows: usize,
    pub dim: usize,
    pub weight: f32,
}

impl Embedder {
    #[cfg(feature = "teacher")]
    pub fn load(cfg: &EmbedConfig, clip_samples: usize) -> Result<Embedder> {
        use crate::teacher::{SpeechEmbedding, embedding};
        let teacher = SpeechEmbedding::load(&cfg.teacher)?;
        let windows = embedding::windows_for(clip_samples);
        if windows == 0 {
            anyhow::bail!("clips of {clip_samples} samples are too short for the speech embedding");
        }
        Ok(Embedder {
            embed: Box::new(move |clip| Ok(teacher.embed(clip)?.concat())),
            windows,
            dim: embedding::DIM,
            weight: cfg.weight,
        })
    }

    #[cfg(not(feature = "teacher"))]
    pub fn load(cfg: &EmbedConfig, _clip_samples: usize) -> Result<Embedder> {
        anyhow::bail!(
            "--embedding-teacher {}: this build has no teachers (build with --features teacher)",
            cfg.teacher.display()
        )
    }

    /// The teacher's vectors of a clip, `windows × dim` flattened.
    pub fn targets(&self, clip: &[f32]) -> Result<Vec<f32>> {
        (self.embed)(clip)
    }

    /// The frame ranges `(first, len)` of the teacher's windows in an input whose clip
    /// starts at frame `clip_start`: 775 ms windows every 80 ms (at `frame_rate`).
    pub fn frame_windows(&self, clip_start: usize, frame_rate: f32) -> Vec<(usize, usize)> {
        let at = |s: f32| (s * frame_rate).round() as usize;
        (0..self.windows)
            .map(|k| (clip_start + at(0.08 * k as f32), at(0.775)))
            .collect()
    }
}

/// The embedding loss: mean over clips and windows of 1 − the cosine similarity of the
/// student's vectors and the teacher's (`[B, K, D]` both), each centred on its batch mean:
/// the speech embedding's vectors share a large common part (raw cosines start near 0.8),
/// and what tells clips apart is the rest. 0 when they point alike.
pub fn embedding_loss(student: Tensor<3>, teacher: Tensor<3>) -> Tensor<1> {
    let centre = |t: Tensor<3>| t.clone() - t.mean_dim(0).mean_dim(1);
    let (student, teacher) = (centre(student), centre(teacher));
    let dot = (student.clone() * teacher.clone()).sum_dim(2);
    let norm = |t: Tensor<3>| (t.clone() * t).sum_dim(2).add_scalar(1e-8).sqrt();
    let cos = dot / (norm(student) * norm(teacher));
    cos.neg().add_scalar(1.0).mean()
}

/// Checks the settings before any data is read.
pub fn check(cfg: &DistillConfig) -> Result<()> {
    if !(0.0..=1.0).contains(&cfg.weight) {
        anyhow::bail!("distillation weight {} is not in 0..1", cfg.weight);
    }
    if !(cfg.temperature.is_finite() && cfg.temperature > 0.0) {
        anyhow::bail!("temperature {} must be positive", cfg.temperature);
    }
    if cfg.teachers.is_empty() {
        anyhow::bail!("distillation needs a teacher");
    }
    if let Some(p) = cfg.teachers.iter().find(|p| !p.is_file()) {
        anyhow::bail!("teacher {}: no such file", p.display());
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

/// Checks the embedding settings before any data is read.
pub fn check_embed(cfg: &EmbedConfig) -> Result<()> {
    if !(cfg.weight.is_finite() && cfg.weight > 0.0) {
        anyhow::bail!("embedding weight {} must be positive", cfg.weight);
    }
    if !Path::new(&cfg.teacher).is_file() {
        anyhow::bail!("embedding teacher {}: no such file", cfg.teacher.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    #[test]
    fn embedding_loss_compares_what_differs_from_the_batch_mean() {
        let dev = crate::batch::burn_device(crate::batch::DeviceKind::Cpu).unwrap();
        let t = |v: Vec<f32>| Tensor::<3>::from_data(TensorData::new(v, [2, 1, 2]), &dev);
        let at = |s: Vec<f32>, q: Vec<f32>| embedding_loss(t(s), t(q)).into_scalar::<f32>();
        let q = vec![5.0, 1.0, 5.0, 3.0]; // a shared part (5, 2) and ∓(0, 1)
        // The same deviations at another scale and offset: 0.
        assert!(at(vec![-1.0, 0.0, -1.0, 4.0], q.clone()).abs() < 1e-5);
        // Opposite deviations: 2, though the raw vectors point alike.
        assert!((at(vec![5.0, 3.0, 5.0, 1.0], q.clone()) - 2.0).abs() < 1e-5);
        // Deviations at right angles: 1.
        assert!((at(vec![4.0, 2.0, 6.0, 2.0], q) - 1.0).abs() < 1e-5);
    }

    #[test]
    fn an_embedding_head_learns_fixed_targets_through_the_spikes() {
        use crate::batch::net::TrainNet;
        use crate::config::NetworkConfig;
        use burn::optim::{AdamConfig, GradientsParams};
        let dev = crate::batch::burn_device(crate::batch::DeviceKind::Cpu)
            .unwrap()
            .autodiff();
        let cfg = NetworkConfig {
            channels: vec![24, 24],
            dilations: vec![1, 2],
            ..NetworkConfig::default()
        };
        let net = crate::snn::network::random_network(&cfg, 10, 4, 5);
        let mut r = crate::util::Rng::new(9);
        let (b, t, k, dim) = (8, 40, 2, 6);
        let head: Vec<f32> = (0..24 * dim).map(|_| 0.2 * r.normal()).collect();
        let mut tn = TrainNet::from_network(&net, &dev).with_embedding_head(
            head,
            vec![0.0; dim],
            vec![(0, 30), (10, 30)],
            &dev,
        );
        let x: Vec<f32> = (0..b * 10 * t).map(|_| 1.5 * r.normal().abs()).collect();
        let x = Tensor::<3>::from_data(TensorData::new(x, [b, 10, t]), &dev);
        let q: Vec<f32> = (0..b * k * dim).map(|_| r.normal()).collect();
        let q = Tensor::<3>::from_data(TensorData::new(q, [b, k, dim]), &dev);
        let mut optim = AdamConfig::new().init();
        let mut losses = Vec::new();
        for _ in 0..60 {
            let e = tn.forward_train(x.clone(), 0, None).embeddings.unwrap();
            let loss = embedding_loss(e, q.clone());
            losses.push(loss.clone().into_scalar::<f32>());
            let grads = GradientsParams::from_grads(loss.backward(), &tn);
            tn = optim.step(0.02, tn, grads);
        }
        let (first, last) = (losses[0], *losses.last().unwrap());
        assert!(last < first - 0.3, "embedding loss {first} -> {last}");
        assert!(tn.embedding_head().is_some());
    }

    #[test]
    fn softening_keeps_the_order_and_flattens() {
        let p = [0.97, 0.02, 0.01];
        let q = soften(&p, &[0, 1, 2], 2.0);
        assert!((q.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(q[0] > q[1] && q[1] > q[2]);
        assert!(q[0] < 0.97 && q[2] > 0.01);
        let same = soften(&p, &[0, 1, 2], 1.0);
        assert!(same.iter().zip(&p).all(|(a, b)| (a - b).abs() < 1e-6));
        let swapped = soften(&p, &[2, 0], 1.0);
        assert!(swapped[1] > swapped[0]);
    }

    #[test]
    fn a_run_of_an_earlier_version_names_one_teacher() {
        let old: DistillConfig =
            serde_json::from_str(r#"{"teacher": "a.tflite", "weight": 0.7, "temperature": 3.0}"#)
                .unwrap();
        assert_eq!(old.teachers, vec![PathBuf::from("a.tflite")]);
        let new = serde_json::to_string(&old).unwrap();
        let back: DistillConfig = serde_json::from_str(&new).unwrap();
        assert_eq!(back.teachers, old.teachers);
    }

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
