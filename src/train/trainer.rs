//! The training loop: class-balanced epochs of augmented clips, BPTT with surrogate
//! gradients, Adam with cosine decay and gradient clipping, parameter clamping,
//! a firing-rate penalty, validation on the frame-by-frame engine, and atomic
//! per-epoch checkpoints that `--resume` continues exactly.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::optim::{AdamConfig, GradientsParams, grad_clipping::GradientClippingConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::augment::{self, AugmentConfig};
use super::data::{Dataset, Split, SplitRule, Task, label_index, task_labels};
use super::net::TrainNet;
use crate::audio::{fit_length, load_wav};
use crate::config::{EncoderConfig, FeatureConfig, ModelConfig, NetworkConfig, SILENCE};
use crate::encoding;
use crate::eval::{evaluate, load_labeled, parallel_map};
use crate::features::{MelFrame, Normalizer, log_mel_with, with_mel_frame};
use crate::model::Model;
use crate::snn::{Ensemble, Network, random_network};
use crate::util::{Rng, atomic_write};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum DeviceKind {
    Cpu,
    Gpu,
}

pub fn burn_device(kind: DeviceKind) -> Result<Device> {
    match kind {
        DeviceKind::Cpu => Ok(Device::flex()),
        #[cfg(feature = "gpu")]
        DeviceKind::Gpu => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
        #[cfg(not(feature = "gpu"))]
        DeviceKind::Gpu => bail!("this build has no GPU support: rebuild with `--features gpu`"),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainOptions {
    pub data: PathBuf,
    /// Extra clips in the same layout (e.g. synthetic speech), training split only.
    pub extra: Vec<PathBuf>,
    pub run_dir: PathBuf,
    pub out: PathBuf,
    pub task: Task,
    pub split_rule: SplitRule,
    pub epochs: usize,
    pub batch: usize,
    pub lr: f64,
    pub seed: u64,
    pub device: DeviceKind,
    /// Training examples per class and epoch (class-balanced sampling).
    pub per_class: usize,
    pub rate_target: f32,
    pub rate_weight: f32,
    pub features: FeatureConfig,
    pub encoder: EncoderConfig,
    pub network: NetworkConfig,
    pub augment: AugmentConfig,
    /// Start from this trained model's weights and normaliser (fine-tuning).
    #[serde(default)]
    pub init: Option<PathBuf>,
    /// Spike dropout probability during training (see `TrainNet::forward_train`).
    #[serde(default)]
    pub dropout: f32,
    /// Weight of the word-head loss (every word of the data its own class, see
    /// `TrainNet::word_w`); 0 = no word head.
    #[serde(default)]
    pub word_head: f32,
    /// Words the word head lumps into one "other" class (e.g. words kept unseen for a
    /// later retraining test).
    #[serde(default)]
    pub word_head_exclude: Vec<String>,
    /// Largest membrane leak β (memory τ = 1/(1−β) frames). A neuron that remembers
    /// long keeps the phase its context left it in: after a context, the spikes of
    /// first-layer neurons with β > 0.9 still differ 0.4 s into a clip, those below 0.8
    /// agree within 0.1 s (`examples/stream_agreement.rs` measures the decisions).
    #[serde(default = "default_leak_max")]
    pub leak_max: f32,
}

fn default_leak_max() -> f32 {
    super::net::BETA_MAX
}

/// What a checkpoint carries besides weights and optimiser state.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Progress {
    epoch: usize,
    rng: Rng,
    best_val: f64,
    best_epoch: usize,
    elapsed_s: f64,
    options: TrainOptions,
    /// Word-head weights and biases (training-only parameters, kept for resuming).
    #[serde(default)]
    word_head: Option<(Vec<f32>, Vec<f32>)>,
}

impl Progress {
    /// Before the first epoch.
    fn start(opts: &TrainOptions) -> Self {
        Progress {
            epoch: 0,
            rng: Rng::new(opts.seed),
            best_val: -1.0,
            best_epoch: 0,
            elapsed_s: 0.0,
            options: opts.clone(),
            word_head: None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct EpochLog {
    pub epoch: usize,
    pub lr: f64,
    pub loss: f64,
    pub train_acc: f64,
    pub train_rate_hz: f64,
    pub val_acc: f64,
    pub val_rate_hz: f64,
    pub clips_per_s: f64,
    pub elapsed_s: f64,
}

/// Training clips in memory, grouped by class.
struct TrainSet {
    by_class: Vec<Vec<Vec<f32>>>,
    /// Word-head class of each clip of `by_class`.
    word_of: Vec<Vec<usize>>,
    /// Word-head classes: the vocabulary, then "other" (excluded words), then silence.
    words: Vec<String>,
    noise: Vec<Vec<f32>>,
    silence_class: Option<usize>,
}

fn load_train_set(
    ds: &Dataset,
    extra: &[Dataset],
    labels: &[String],
    rate: u32,
    word_head_exclude: &[String],
) -> Result<TrainSet> {
    let len = rate as usize;
    let clips: Vec<_> = ds
        .split(Split::Train)
        .chain(extra.iter().flat_map(|d| d.clips.iter()))
        .filter_map(|c| label_index(labels, &c.word).map(|l| (c.path.clone(), l, &c.word)))
        .collect();
    let mut words: Vec<String> = clips
        .iter()
        .map(|(_, _, w)| w.to_string())
        .filter(|w| !word_head_exclude.contains(w))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let other = words.len();
    words.extend(["_other_".to_string(), SILENCE.to_string()]);
    let loaded = parallel_map(&clips, |(p, l, w)| {
        let wi = words.iter().position(|x| x == *w).unwrap_or(other);
        load_wav(p, rate).map(|x| (fit_length(&x, len), *l, wi))
    });
    let mut by_class = vec![Vec::new(); labels.len()];
    let mut word_of = vec![Vec::new(); labels.len()];
    let mut bad = 0;
    for r in loaded {
        match r {
            Ok((x, l, wi)) => {
                by_class[l].push(x);
                word_of[l].push(wi);
            }
            Err(_) => bad += 1,
        }
    }
    if bad > 0 {
        eprintln!("warning: {bad} unreadable training clips skipped");
    }
    let noise = ds.noise_waves(Split::Train, rate);
    let silence_class = labels.iter().position(|l| l == SILENCE);
    for (i, c) in by_class.iter().enumerate() {
        if c.is_empty() && Some(i) != silence_class {
            bail!("no training clips for class {}", labels[i]);
        }
    }
    Ok(TrainSet {
        by_class,
        word_of,
        words,
        noise,
        silence_class,
    })
}

/// Per-band mean and std of log-mel over (a sample of) the training clips.
fn band_stats(set: &TrainSet, cfg: &FeatureConfig) -> (Vec<f32>, Vec<f32>) {
    let mut mf = MelFrame::new(cfg);
    let n = cfg.n_mels;
    let (mut sum, mut sq, mut count) = (vec![0f64; n], vec![0f64; n], 0usize);
    for clips in &set.by_class {
        for x in clips.iter().take(200) {
            let m = log_mel_with(&mut mf, x);
            for f in m.data.chunks_exact(n) {
                for (i, v) in f.iter().enumerate() {
                    sum[i] += *v as f64;
                    sq[i] += (*v as f64).powi(2);
                }
                count += 1;
            }
        }
    }
    let mean: Vec<f32> = sum.iter().map(|s| (s / count as f64) as f32).collect();
    let std = sq
        .iter()
        .zip(&mean)
        .map(|(q, m)| ((q / count as f64 - (*m as f64).powi(2)).max(1e-6)).sqrt() as f32)
        .collect();
    (mean, std)
}

/// One training example as network input `[C, T]` (flattened) plus label.
fn make_example(
    set: &TrainSet,
    class: usize,
    opts: &TrainOptions,
    norm: &Normalizer,
    mf: &mut MelFrame,
    rng: &mut Rng,
) -> (Vec<f32>, usize) {
    let len = opts.features.sample_rate as usize;
    let hop = opts.features.hop_length;
    let ctx_frames = context_frames(opts);
    let mut word = set.words.len() - 1;
    let mut wave = if Some(class) == set.silence_class {
        augment::silence_clip(&set.noise, len, rng)
    } else {
        let pool = &set.by_class[class];
        let i = rng.below(pool.len());
        word = set.word_of[class][i];
        augment::augment_wave(
            &pool[i],
            &set.noise,
            &opts.augment,
            opts.features.sample_rate,
            rng,
        )
    };
    // Left context: a quarter each of zero state (as offline), noise, other speech, quiet.
    let kind = if ctx_frames > 0 { rng.below(4) } else { 0 };
    if kind > 0 {
        let n_ctx = ctx_frames * hop;
        let mut ctx = match kind {
            1 => augment::silence_clip(&set.noise, n_ctx, rng),
            2 => {
                let pool = &set.by_class[rng.below(set.by_class.len())];
                if pool.is_empty() {
                    augment::silence_clip(&set.noise, n_ctx, rng)
                } else {
                    let other = &pool[rng.below(pool.len())];
                    other[other.len().saturating_sub(n_ctx)..].to_vec()
                }
            }
            _ => (0..n_ctx).map(|_| rng.normal() * 1e-4).collect(),
        };
        ctx.resize(n_ctx, 0.0);
        ctx.extend_from_slice(&wave);
        wave = ctx;
    }
    let mut mel = log_mel_with(mf, &wave);
    let n = mel.n_mels;
    for f in mel.data.chunks_exact_mut(n) {
        norm.apply(f);
    }
    if kind == 0 && ctx_frames > 0 {
        // Zero state: zero input frames, exactly what an isolated clip sees.
        let mut z = vec![0.0; ctx_frames * n];
        z.extend_from_slice(&mel.data);
        mel.data = z;
    }
    augment::spec_augment(&mut mel.data, n, &opts.augment, rng);
    let (enc, _) = encoding::encode_clip(&opts.encoder, &mel.data, n);
    (
        super::net::channels_first(&enc, opts.encoder.out_channels(n)),
        word,
    )
}

/// Frames of left context per training example.
fn context_frames(opts: &TrainOptions) -> usize {
    (opts.augment.context_s * opts.features.frame_rate()).round() as usize
}

fn cosine_lr(base: f64, epoch: usize, epochs: usize) -> f64 {
    let p = epoch as f64 / epochs.max(1) as f64;
    base * (0.02 + 0.98 * 0.5 * (1.0 + (std::f64::consts::PI * p).cos()))
}

fn build_model(
    opts: &TrainOptions,
    labels: &[String],
    mean: Vec<f32>,
    std: Vec<f32>,
    net: Network,
    training: serde_json::Value,
) -> Model {
    Model {
        config: ModelConfig {
            features: opts.features.clone(),
            encoder: opts.encoder.clone(),
            network: opts.network.clone(),
            labels: labels.to_vec(),
            norm_mean: mean,
            norm_std: std,
        },
        net: Ensemble::single(net),
        training,
    }
}

/// Trains to `opts.epochs`; with `stop_after`, returns after that many epochs of this call
/// (a planned interruption: `--resume` continues it exactly), without the final model.
pub fn train(opts: TrainOptions, resume: bool) -> Result<Model> {
    train_for(opts, resume, None)
}

pub fn train_for(mut opts: TrainOptions, resume: bool, stop_after: Option<usize>) -> Result<Model> {
    std::fs::create_dir_all(&opts.run_dir)
        .with_context(|| format!("creating {}", opts.run_dir.display()))?;
    let ckpt_model = opts.run_dir.join("checkpoint.safetensors");
    let ckpt_optim = opts.run_dir.join("optimizer.bpk");
    let best_path = opts.run_dir.join("best.safetensors");
    let log_path = opts.run_dir.join("log.csv");

    // On resume the run's own options win (except the epoch count, which may be extended).
    let resumed: Option<(Model, Progress)> = if resume && ckpt_model.exists() {
        let m = Model::load(&ckpt_model)?;
        let p: Progress = serde_json::from_value(m.training["progress"].clone())
            .context("checkpoint has no progress record")?;
        let epochs = opts.epochs;
        opts = p.options.clone();
        opts.epochs = epochs;
        eprintln!(
            "resuming {} after epoch {}",
            opts.run_dir.display(),
            p.epoch
        );
        Some((m, p))
    } else {
        if resume {
            eprintln!(
                "no checkpoint in {}: starting fresh",
                opts.run_dir.display()
            );
        }
        None
    };

    let device_plain = burn_device(opts.device)?;
    let device = device_plain.clone().autodiff();
    let t0 = Instant::now();
    let ds = Dataset::scan(&opts.data, &opts.split_rule)?;
    let extra: Vec<Dataset> = opts
        .extra
        .iter()
        .map(|p| Dataset::scan(p, &opts.split_rule))
        .collect::<Result<_>>()?;
    let labels = task_labels(opts.task, Some(&ds));
    let rate = opts.features.sample_rate;
    let set = load_train_set(&ds, &extra, &labels, rate, &opts.word_head_exclude)?;
    let (val, _) = load_labeled(&ds, Some(Split::Validation), &labels, rate);
    eprintln!(
        "data: {} training clips ({} per class: {}), {} validation clips, {} noise files; loaded in {:.1}s",
        set.by_class.iter().map(Vec::len).sum::<usize>(),
        labels.len(),
        set.by_class
            .iter()
            .map(|c| c.len().to_string())
            .collect::<Vec<_>>()
            .join("/"),
        val.len(),
        set.noise.len(),
        t0.elapsed().as_secs_f32()
    );

    let (mean, std, net, mut progress) = match resumed {
        Some((m, p)) => (
            m.config.norm_mean.clone(),
            m.config.norm_std.clone(),
            m.net.into_first(),
            p,
        ),
        None if opts.init.is_some() => {
            let path = opts.init.clone().expect("checked");
            let m = Model::load(&path)?;
            if m.labels() != labels.as_slice() {
                bail!(
                    "--init {}: its labels ({}) are not this task's ({})",
                    path.display(),
                    m.labels().join(","),
                    labels.join(",")
                );
            }
            if m.net.len() > 1 {
                bail!(
                    "--init {}: an ensemble of {} networks; training starts from one network",
                    path.display(),
                    m.net.len()
                );
            }
            // The architecture and front end are the initial model's.
            opts.features = m.config.features.clone();
            opts.encoder = m.config.encoder.clone();
            opts.network = m.config.network.clone();
            let p = Progress::start(&opts);
            (
                m.config.norm_mean.clone(),
                m.config.norm_std.clone(),
                m.net.into_first(),
                p,
            )
        }
        None => {
            let (mean, std) = band_stats(&set, &opts.features);
            let c_in = opts.encoder.out_channels(opts.features.n_mels);
            let mut net = random_network(&opts.network, c_in, labels.len(), opts.seed);
            // Calibrate on a few real clips.
            let norm = Normalizer::new(&mean, &std);
            let mut mf = MelFrame::new(&opts.features);
            let probe: Vec<Vec<f32>> = set
                .by_class
                .iter()
                .flat_map(|c| c.iter().take(3))
                .map(|x| {
                    let mut m = log_mel_with(&mut mf, x);
                    m.data
                        .chunks_exact_mut(m.n_mels)
                        .for_each(|f| norm.apply(f));
                    encoding::encode_clip(&opts.encoder, &m.data, m.n_mels).0
                })
                .collect();
            net.calibrate(&probe, 0.1);
            let p = Progress::start(&opts);
            (mean, std, net, p)
        }
    };
    let norm = Normalizer::new(&mean, &std);

    let mut tn = TrainNet::from_network(&net, &device);
    if opts.word_head > 0.0 {
        let c = net.readout.c_in;
        let (w, b) = progress.word_head.clone().unwrap_or_else(|| {
            let mut r = Rng::new(opts.seed ^ 0x00f0_0d5e);
            let scale = 1.0 / (c as f32).sqrt();
            let w = (0..c * set.words.len())
                .map(|_| r.normal() * scale)
                .collect();
            (w, vec![0.0; set.words.len()])
        });
        if w.len() != c * set.words.len() {
            bail!("the checkpoint's word head does not fit this data's vocabulary");
        }
        tn = tn.with_word_head(w, b, &device);
    }
    let mut optim = AdamConfig::new()
        .with_grad_clipping(Some(GradientClippingConfig::Norm(1.0)))
        .init();
    if progress.epoch > 0 {
        let bytes = std::fs::read(&ckpt_optim).context("checkpoint without optimizer state")?;
        optim = optim
            .from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
            .map_err(|e| anyhow::anyhow!("optimizer state: {e:?}"))?;
    } else {
        let mut f = std::fs::File::create(&log_path)?;
        writeln!(
            f,
            "epoch,lr,loss,train_acc,train_rate_hz,val_acc,val_rate_hz,clips_per_s,elapsed_s"
        )?;
    }

    let n_cls = labels.len();
    let ctx_frames = context_frames(&opts);
    let frame_rate = opts.features.frame_rate() as f64;
    let mut budget = stop_after.unwrap_or(usize::MAX);
    while progress.epoch < opts.epochs {
        if budget == 0 {
            eprintln!(
                "stopping after epoch {} as asked; continue with --resume",
                progress.epoch
            );
            return Ok(Model::load(&ckpt_model)?);
        }
        budget -= 1;
        let epoch = progress.epoch + 1;
        let te = Instant::now();
        let lr = cosine_lr(opts.lr, progress.epoch, opts.epochs);
        // Class-balanced epoch: `per_class` draws of every class, shuffled.
        let mut order: Vec<usize> = (0..n_cls)
            .flat_map(|c| std::iter::repeat_n(c, opts.per_class))
            .collect();
        progress.rng.shuffle(&mut order);
        // Each example gets its own seed so that parallel preparation stays deterministic.
        let seeds: Vec<u64> = order.iter().map(|_| progress.rng.next_u64()).collect();
        let jobs: Vec<(usize, u64)> = order.iter().copied().zip(seeds).collect();
        let examples: Vec<(Vec<f32>, usize)> = parallel_map(&jobs, |(c, s)| {
            with_mel_frame(&opts.features, |mf| {
                make_example(&set, *c, &opts, &norm, mf, &mut Rng::new(*s))
            })
        });
        let c_in = opts.encoder.out_channels(opts.features.n_mels);
        let t = examples[0].0.len() / c_in;
        let pb = indicatif::ProgressBar::new(jobs.len() as u64);
        pb.set_style(
            indicatif::ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg}")
                .unwrap()
                .progress_chars("=> "),
        );
        pb.set_prefix(format!("{epoch}/{}", opts.epochs));
        let (mut loss_sum, mut correct, mut seen, mut rate_sum, mut steps) =
            (0f64, 0usize, 0usize, 0f64, 0usize);
        for (bi, chunk) in jobs.chunks(opts.batch).enumerate() {
            let b = chunk.len();
            let mut xs = Vec::with_capacity(b * c_in * t);
            for k in 0..b {
                xs.extend_from_slice(&examples[bi * opts.batch + k].0);
            }
            let word_labels: Vec<i64> = (0..b)
                .map(|k| examples[bi * opts.batch + k].1 as i64)
                .collect();
            let labels_b: Vec<i64> = chunk.iter().map(|(c, _)| *c as i64).collect();
            let x: Tensor<3> = Tensor::from_data(TensorData::new(xs, [b, c_in, t]), &device);
            let y: Tensor<1, Int> =
                Tensor::from_data(TensorData::new(labels_b.clone(), [b]), &device);
            let drop = (opts.dropout > 0.0).then(|| (opts.dropout, progress.rng.next_u64()));
            let start = opts.network.decision_start(ctx_frames, t);
            let fwd = tn.forward_train(x, start, drop);
            let mut loss = super::net::loss(&fwd, y, opts.rate_target, opts.rate_weight);
            if let Some(wl) = fwd.word_logits.clone() {
                let yw = Tensor::from_data(TensorData::new(word_labels, [b]), &device);
                loss = loss + super::net::cross_entropy(wl, yw).mul_scalar(opts.word_head);
            }
            let rates: f64 = fwd
                .rates
                .iter()
                .map(|r| r.clone().into_scalar::<f32>() as f64)
                .sum();
            let loss_v = loss.clone().into_scalar::<f32>() as f64;
            if !loss_v.is_finite() {
                bail!("loss became {loss_v} at epoch {epoch}: lower --lr");
            }
            let lv = fwd
                .logits
                .clone()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap_or_default();
            correct += lv
                .chunks(n_cls)
                .zip(&labels_b)
                .filter(|(row, c)| crate::eval::argmax(row) as i64 == **c)
                .count();
            seen += b;
            loss_sum += loss_v;
            rate_sum += rates / fwd.rates.len() as f64;
            steps += 1;
            let grads = GradientsParams::from_grads(loss.backward(), &tn);
            tn = optim.step(lr, tn, grads).clamp(opts.leak_max);
            pb.set_position(seen as u64);
            pb.set_message(format!(
                "loss {:.3} acc {:.1}% rate {:.1} Hz",
                loss_sum / steps as f64,
                100.0 * correct as f64 / seen as f64,
                rate_sum / steps as f64 * frame_rate
            ));
        }
        pb.finish_and_clear();
        let train_secs = te.elapsed().as_secs_f64();

        // Validate on the inference engine (what ships), not on the training graph.
        let net = tn.to_network();
        let mut model = build_model(
            &opts,
            &labels,
            mean.clone(),
            std.clone(),
            net,
            serde_json::Value::Null,
        );
        let (rep, _) = evaluate(&model, &val);
        progress.epoch = epoch;
        progress.elapsed_s += te.elapsed().as_secs_f64();
        let log = EpochLog {
            epoch,
            lr,
            loss: loss_sum / steps.max(1) as f64,
            train_acc: correct as f64 / seen.max(1) as f64,
            train_rate_hz: rate_sum / steps.max(1) as f64 * frame_rate,
            val_acc: rep.accuracy,
            val_rate_hz: rep.firing_rate_hz,
            clips_per_s: seen as f64 / train_secs,
            elapsed_s: progress.elapsed_s,
        };
        eprintln!(
            "epoch {epoch}/{}: loss {:.4} train {:.1}% val {:.2}% rate {:.2} Hz ({:.0} clips/s, {:.0}s)",
            opts.epochs,
            log.loss,
            100.0 * log.train_acc,
            100.0 * log.val_acc,
            log.val_rate_hz,
            log.clips_per_s,
            log.elapsed_s
        );
        {
            let mut f = std::fs::OpenOptions::new().append(true).open(&log_path)?;
            writeln!(
                f,
                "{},{:.6},{:.5},{:.5},{:.3},{:.5},{:.3},{:.1},{:.1}",
                log.epoch,
                log.lr,
                log.loss,
                log.train_acc,
                log.train_rate_hz,
                log.val_acc,
                log.val_rate_hz,
                log.clips_per_s,
                log.elapsed_s
            )?;
        }
        if rep.accuracy > progress.best_val {
            progress.best_val = rep.accuracy;
            progress.best_epoch = epoch;
            model.training = serde_json::json!({
                "epoch": epoch,
                "val_accuracy": rep.accuracy,
                "val_firing_rate_hz": rep.firing_rate_hz,
                "split_rule": opts.split_rule,
            });
            model.save(&best_path)?;
        }
        // Checkpoint: optimizer first, then the model that names the epoch, so a crash
        // between the two resumes from the previous epoch's consistent pair at worst.
        let ob = optim
            .into_bytes()
            .map_err(|e| anyhow::anyhow!("optimizer state: {e:?}"))?;
        atomic_write(&ckpt_optim, &ob)?;
        progress.word_head = tn.word_head();
        model.training = serde_json::json!({ "progress": progress });
        model.save(&ckpt_model)?;
    }

    // Final: the best validation epoch, evaluated once on the held-out test speakers.
    let mut best = Model::load(&best_path)?;
    let (test, _) = load_labeled(&ds, Some(Split::Test), &labels, rate);
    let (rep, _) = evaluate(&best, &test);
    eprintln!(
        "best epoch {} (val {:.2}%): test {:.2}% on {} clips, {:.2} Hz",
        progress.best_epoch,
        100.0 * progress.best_val,
        100.0 * rep.accuracy,
        rep.n,
        rep.firing_rate_hz
    );
    best.training = serde_json::json!({
        "data": opts.data,
        "extra": opts.extra,
        "task": opts.task,
        "split_rule": opts.split_rule,
        "epochs": opts.epochs,
        "best_epoch": progress.best_epoch,
        "val_accuracy": progress.best_val,
        "test_accuracy": rep.accuracy,
        "test_clips": rep.n,
        "test_firing_rate_hz": rep.firing_rate_hz,
        "test_per_layer_hz": rep.per_layer_hz,
        "seed": opts.seed,
        "wall_time_s": progress.elapsed_s,
        "options": opts,
        "date": chrono_free_date(),
    });
    best.save(&opts.out)?;
    std::fs::write(opts.run_dir.join("test_report.txt"), rep.to_text())?;
    Ok(best)
}

/// Today's date (UTC) without a date crate.
pub fn chrono_free_date() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + (m <= 2) as i64;
    format!("{y:04}-{m:02}-{d:02}")
}

/// The split rule a model was trained with (official when unknown).
pub fn model_split_rule(model: &Model) -> SplitRule {
    serde_json::from_value(model.training["split_rule"].clone()).unwrap_or(SplitRule::Official)
}
