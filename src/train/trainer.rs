//! The training loop: class-balanced epochs of augmented clips, BPTT with surrogate
//! gradients, Adam with cosine decay and gradient clipping, parameter clamping,
//! a firing-rate penalty, validation on the frame-by-frame engine, and atomic
//! per-epoch checkpoints that `--resume` continues exactly.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::optim::{
    AdamConfig, GradientsParams, ModuleOptimizer, grad_clipping::GradientClippingConfig,
};
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::augment::AugmentConfig;
use super::checkpoint::{Checkpoint, Checkpoints};
use super::distill::{
    DistillConfig, Distiller, EmbedConfig, Embedder, distillation_loss, embedding_loss,
};
use super::examples::{Example, ExampleMaker, TrainSet, band_stats};
use super::replay_pick::model_file_store;
use crate::batch::net::{Forward, LayerOps};
use crate::batch::{DeviceKind, TrainNet, burn_device, ops_for};
use crate::config::{EncoderConfig, FeatureConfig, ModelConfig, NetworkConfig};
use crate::data::{Dataset, Split, SplitRule, Task, task_labels};
use crate::data::{LabeledAudio, load_labeled};
use crate::encoding;
use crate::eval::evaluate;
use crate::features::{MelFrame, Normalizer, log_mel_with, with_mel_frame};
use crate::model::Model;
use crate::snn::{Ensemble, Network, random_network};
use crate::util::parallel_map;
use crate::util::{Rng, atomic_write};

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
    /// Which network of an `init` ensemble to start from.
    #[serde(default)]
    pub init_member: Option<usize>,
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
    /// How the layers run (`None`: the device's default, see `batch::ops_for`);
    /// for benchmarks, not recorded (both compute the same).
    #[serde(skip)]
    pub ops: Option<LayerOps>,
    /// Learn from a teacher's posteriors as well as the labels.
    #[serde(default)]
    pub distill: Option<DistillConfig>,
    /// Learn a speech embedding's vectors with a training-only embedding head.
    #[serde(default)]
    pub embed: Option<EmbedConfig>,
}

fn default_leak_max() -> f32 {
    crate::batch::net::BETA_MAX
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
    /// Embedding-head weights and biases (training only, kept for resuming).
    #[serde(default)]
    embedding_head: Option<(Vec<f32>, Vec<f32>)>,
    /// Every epoch's log line so far (log.csv is rewritten from it).
    #[serde(default)]
    log: Vec<EpochLog>,
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
            embedding_head: None,
            log: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// Mean embedding loss (1 − cosine) when training an embedding head.
    #[serde(default)]
    pub embedding_loss: Option<f64>,
}

impl EpochLog {
    /// The line printed after each epoch.
    fn line(&self, epochs: usize) -> String {
        let emb = self
            .embedding_loss
            .map_or(String::new(), |e| format!(" embedding {e:.3}"));
        format!(
            "epoch {}/{epochs}: loss {:.4}{emb} train {:.1}% val {:.2}% rate {:.2} Hz ({:.0} clips/s, {:.0}s)",
            self.epoch,
            self.loss,
            100.0 * self.train_acc,
            100.0 * self.val_acc,
            self.val_rate_hz,
            self.clips_per_s,
            self.elapsed_s
        )
    }
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
            operating_points: Vec::new(),
        },
        net: Ensemble::single(net),
        training,
        replay: None,
    }
}

/// Trains to `opts.epochs`.
pub fn train(opts: TrainOptions, resume: bool) -> Result<Model> {
    train_for(opts, resume, None)
}

/// Trains to `opts.epochs`, continuing the run's last checkpoint with `resume`. With
/// `stop_after`, returns after that many epochs of this call (a planned interruption:
/// `--resume` continues it exactly) with the checkpoint's model, not the final one.
pub fn train_for(mut opts: TrainOptions, resume: bool, stop_after: Option<usize>) -> Result<Model> {
    opts.network
        .validate()
        .map_err(|e| anyhow::anyhow!("network: {e}"))?;
    check_init(&opts)?;
    std::fs::create_dir_all(&opts.run_dir)
        .with_context(|| format!("creating {}", opts.run_dir.display()))?;
    let ckpts = Checkpoints::new(&opts.run_dir);
    let resumed = resume_point(&ckpts, resume, &mut opts)?;
    let data = RunData::load(&opts)?;
    let mut run = Run::start(&mut opts, &data, resumed)?;
    let mut budget = stop_after.unwrap_or(usize::MAX);
    while run.progress.epoch < opts.epochs {
        if budget == 0 {
            eprintln!(
                "stopping after epoch {} as asked; continue with --resume",
                run.progress.epoch
            );
            return Ok(run.current_model(&opts, &data, progress_record(&run.progress)));
        }
        budget -= 1;
        let stats = run.train_epoch(&opts, &data)?;
        run.validate_and_checkpoint(&opts, &data, stats, &ckpts)?;
    }
    finish(&opts, &data, &run)
}

/// The checkpoint to continue from, if asked and present. On resume the run's own
/// options win (except the epoch count, which may be extended).
fn resume_point(
    ckpts: &Checkpoints,
    resume: bool,
    opts: &mut TrainOptions,
) -> Result<Option<(Checkpoint, Progress)>> {
    if !resume {
        return Ok(None);
    }
    let Some(dir) = ckpts.latest()? else {
        if opts.run_dir.join("checkpoint.safetensors").exists() {
            bail!(
                "{} holds a checkpoint of an older layout, which this build does not resume",
                opts.run_dir.display()
            );
        }
        eprintln!(
            "no checkpoint in {}: starting fresh",
            opts.run_dir.display()
        );
        return Ok(None);
    };
    let ck = Checkpoints::load(&dir)?;
    let p: Progress = serde_json::from_value(ck.model.training["progress"].clone())
        .with_context(|| format!("{}: no progress record", dir.display()))?;
    let epochs = opts.epochs;
    *opts = p.options.clone();
    opts.epochs = epochs;
    eprintln!(
        "resuming {} after epoch {}",
        opts.run_dir.display(),
        p.epoch
    );
    Ok(Some((ck, p)))
}

/// The data of a run: training clips in memory, validation clips, labels.
struct RunData {
    ds: Dataset,
    labels: Vec<String>,
    set: TrainSet,
    val: Vec<LabeledAudio>,
    distiller: Option<Distiller>,
    embedder: Option<Embedder>,
}

impl RunData {
    fn load(opts: &TrainOptions) -> Result<RunData> {
        let t0 = Instant::now();
        let ds = Dataset::scan(&opts.data, &opts.split_rule)?;
        let extra: Vec<Dataset> = opts
            .extra
            .iter()
            .map(|p| Dataset::scan(p, &opts.split_rule))
            .collect::<Result<_>>()?;
        let labels = task_labels(opts.task, Some(&ds));
        let rate = opts.features.sample_rate;
        let distiller = match &opts.distill {
            Some(cfg) => Some(Distiller::load(cfg, &labels, rate)?),
            None => None,
        };
        let embedder = match &opts.embed {
            Some(cfg) => Some(Embedder::load(cfg, rate as usize)?),
            None => None,
        };
        let set = TrainSet::load(&ds, &extra, &labels, rate, &opts.word_head_exclude)?;
        let (val, failed) = load_labeled(&ds, Some(Split::Validation), &labels, rate);
        if !failed.is_empty() {
            eprintln!(
                "warning: {} unreadable validation clips skipped",
                failed.len()
            );
        }
        let per_class: Vec<String> = set.by_class.iter().map(|c| c.len().to_string()).collect();
        eprintln!(
            "data: {} training clips ({} per class: {}), {} validation clips, {} noise files; loaded in {:.1}s",
            set.by_class.iter().map(Vec::len).sum::<usize>(),
            labels.len(),
            per_class.join("/"),
            val.len(),
            set.noise.len(),
            t0.elapsed().as_secs_f32()
        );
        Ok(RunData {
            ds,
            labels,
            set,
            val,
            distiller,
            embedder,
        })
    }
}

/// A run in progress: the differentiable network, its optimiser and where it stands.
struct Run {
    tn: TrainNet,
    optim: ModuleOptimizer,
    progress: Progress,
    mean: Vec<f32>,
    std: Vec<f32>,
    best: Option<Model>,
    device: Device,
}

/// What one epoch of training measured.
struct EpochStats {
    started: Instant,
    lr: f64,
    loss: f64,
    train_acc: f64,
    rate: f64,
    clips_per_s: f64,
    embedding_loss: Option<f64>,
}

impl Run {
    /// From a checkpoint, from `--init`, or from a fresh calibrated network.
    fn start(
        opts: &mut TrainOptions,
        data: &RunData,
        resumed: Option<(Checkpoint, Progress)>,
    ) -> Result<Run> {
        let device = burn_device(opts.device)?.autodiff();
        let mut optim = AdamConfig::new()
            .with_grad_clipping(Some(GradientClippingConfig::Norm(1.0)))
            .init();
        let (mean, std, net, progress, best) = match resumed {
            Some((ck, p)) => {
                optim = optim
                    .from_bytes(burn::tensor::Bytes::from_bytes_vec(ck.optimizer))
                    .map_err(|e| anyhow::anyhow!("optimizer state: {e:?}"))?;
                let c = &ck.model.config;
                let (mean, std) = (c.norm_mean.clone(), c.norm_std.clone());
                (mean, std, ck.model.net.into_first(), p, Some(ck.best))
            }
            None => {
                let (mean, std, net) = match opts.init.clone() {
                    Some(path) => init_from(&path, opts, &data.labels)?,
                    None => fresh_network(opts, data),
                };
                (mean, std, net, Progress::start(opts), None)
            }
        };
        let mut tn = TrainNet::from_network(&net, &device)
            .with_ops(opts.ops.unwrap_or(ops_for(opts.device)));
        if opts.word_head > 0.0 {
            let (w, b) = word_head_weights(opts, &data.set, net.readout.c_in, &progress)?;
            tn = tn.with_word_head(w, b, &device);
        }
        if let Some(e) = &data.embedder {
            let (w, b) = embedding_head_weights(opts, e, net.readout.c_in, &progress)?;
            let windows = e.frame_windows(context_frames(opts), opts.features.frame_rate());
            tn = tn.with_embedding_head(w, b, windows, &device);
        }
        Ok(Run {
            tn,
            optim,
            progress,
            mean,
            std,
            best,
            device,
        })
    }

    /// One class-balanced epoch of augmented examples: forward, backward, Adam step. The
    /// running sums stay on the device; the host reads them once per epoch (and for the
    /// progress bar every few batches).
    fn train_epoch(&mut self, opts: &TrainOptions, data: &RunData) -> Result<EpochStats> {
        let te = Instant::now();
        let epoch = self.progress.epoch + 1;
        let lr = cosine_lr(opts.lr, self.progress.epoch, opts.epochs);
        let jobs = self.epoch_jobs(opts, data.labels.len());
        let norm = Normalizer::new(&self.mean, &self.std);
        let maker = ExampleMaker {
            set: &data.set,
            features: &opts.features,
            augment: &opts.augment,
            encoder: &opts.encoder,
            context_frames: context_frames(opts),
            norm: &norm,
            distiller: data.distiller.as_ref(),
            embedder: data.embedder.as_ref(),
        };
        let examples: Vec<Example> = parallel_map(&jobs, |(c, s)| {
            with_mel_frame(&opts.features, |mf| maker.make(*c, mf, &mut Rng::new(*s)))
        })
        .into_iter()
        .collect::<Result<_>>()?;
        let c_in = opts.encoder.out_channels(opts.features.n_mels);
        let t = examples[0].x.len() / c_in;
        let start = opts.network.decision_start(context_frames(opts), t);
        let pb = progress_bar(jobs.len(), epoch, opts.epochs);
        let mut sums = Sums::new(&self.device);
        // The optimiser consumes the module and returns the updated one.
        let mut tn = self.tn.clone();
        for (chunk, ex) in jobs.chunks(opts.batch).zip(examples.chunks(opts.batch)) {
            let b = chunk.len();
            let xs: Vec<f32> = ex.iter().flat_map(|e| e.x.iter().copied()).collect();
            let x: Tensor<3> = Tensor::from_data(TensorData::new(xs, [b, c_in, t]), &self.device);
            let classes: Vec<i64> = chunk.iter().map(|(c, _)| *c as i64).collect();
            let y: Tensor<1, Int> = Tensor::from_data(TensorData::new(classes, [b]), &self.device);
            let drop = (opts.dropout > 0.0).then(|| (opts.dropout, self.progress.rng.next_u64()));
            let fwd = tn.forward_train(x, start, drop);
            let mut loss = self.clip_loss(&fwd, y.clone(), ex, opts, data);
            let emb = self.embed_loss(&fwd, ex, data);
            if let (Some(el), Some(e)) = (&emb, &data.embedder) {
                loss = loss + el.clone().mul_scalar(e.weight);
            }
            if let Some(wl) = fwd.word_logits.clone() {
                let words: Vec<i64> = ex.iter().map(|e| e.word as i64).collect();
                let yw = Tensor::from_data(TensorData::new(words, [b]), &self.device);
                loss = loss + crate::batch::net::cross_entropy(wl, yw).mul_scalar(opts.word_head);
            }
            sums.add(&fwd, &loss, emb, y, b);
            let grads = GradientsParams::from_grads(loss.backward(), &tn);
            tn = self.optim.step(lr, tn, grads).clamp(opts.leak_max);
            if sums.steps.is_multiple_of(16) {
                pb.set_message(sums.read()?.message(opts.features.frame_rate()));
            }
            pb.set_position(sums.seen as u64);
        }
        pb.finish_and_clear();
        self.tn = tn;
        let m = sums.read()?;
        if !m.loss.is_finite() {
            bail!("loss became {} in epoch {epoch}: lower --lr", m.loss);
        }
        Ok(EpochStats {
            started: te,
            lr,
            loss: m.loss,
            train_acc: m.acc,
            rate: m.rate * opts.features.frame_rate() as f64,
            clips_per_s: sums.seen as f64 / te.elapsed().as_secs_f64(),
            embedding_loss: m.emb,
        })
    }

    /// The labels' cross-entropy (shared with the teacher's when distilling) plus the
    /// firing-rate penalty.
    fn clip_loss(
        &self,
        fwd: &Forward,
        y: Tensor<1, Int>,
        ex: &[Example],
        opts: &TrainOptions,
        data: &RunData,
    ) -> Tensor<1> {
        let rate = crate::batch::net::rate_penalty(fwd, opts.rate_target, opts.rate_weight);
        let ce = crate::batch::net::cross_entropy(fwd.logits.clone(), y);
        let Some(d) = &data.distiller else {
            return ce + rate;
        };
        let n = data.labels.len();
        let soft: Vec<f32> = ex
            .iter()
            .flat_map(|e| e.soft.as_deref().unwrap_or(&[]).iter().copied())
            .collect();
        let q = Tensor::from_data(TensorData::new(soft, [ex.len(), n]), &self.device);
        let kd = distillation_loss(fwd.logits.clone(), q, d.temperature);
        ce.mul_scalar(1.0 - d.weight) + kd.mul_scalar(d.weight) + rate
    }

    /// The embedding head's loss (unweighted) against the speech embedding's vectors of
    /// the clips.
    fn embed_loss(&self, fwd: &Forward, ex: &[Example], data: &RunData) -> Option<Tensor<1>> {
        let (e, student) = (data.embedder.as_ref()?, fwd.embeddings.clone()?);
        let v: Vec<f32> = ex
            .iter()
            .flat_map(|x| x.emb.iter().flatten().copied())
            .collect();
        let teacher = Tensor::from_data(
            TensorData::new(v, [ex.len(), e.windows, e.dim]),
            &self.device,
        );
        Some(embedding_loss(student, teacher))
    }

    /// `per_class` draws of every class, shuffled, each with its own seed so that parallel
    /// preparation stays deterministic.
    fn epoch_jobs(&mut self, opts: &TrainOptions, n_cls: usize) -> Vec<(usize, u64)> {
        let mut order: Vec<usize> = (0..n_cls)
            .flat_map(|c| std::iter::repeat_n(c, opts.per_class))
            .collect();
        self.progress.rng.shuffle(&mut order);
        let seeds: Vec<u64> = order.iter().map(|_| self.progress.rng.next_u64()).collect();
        order.into_iter().zip(seeds).collect()
    }

    /// Validates on the inference engine (what ships, not the training graph), logs the
    /// epoch and writes its checkpoint (with the best model so far) as one unit.
    fn validate_and_checkpoint(
        &mut self,
        opts: &TrainOptions,
        data: &RunData,
        s: EpochStats,
        ckpts: &Checkpoints,
    ) -> Result<()> {
        let mut model = self.current_model(opts, data, serde_json::Value::Null);
        let (rep, _) = evaluate(&model, &data.val);
        let p = &mut self.progress;
        p.epoch += 1;
        p.elapsed_s += s.started.elapsed().as_secs_f64();
        let log = EpochLog {
            epoch: p.epoch,
            lr: s.lr,
            loss: s.loss,
            train_acc: s.train_acc,
            train_rate_hz: s.rate,
            val_acc: rep.accuracy,
            val_rate_hz: rep.firing_rate_hz,
            clips_per_s: s.clips_per_s,
            elapsed_s: p.elapsed_s,
            embedding_loss: s.embedding_loss,
        };
        eprintln!("{}", log.line(opts.epochs));
        p.log.push(log);
        if rep.accuracy > p.best_val || self.best.is_none() {
            p.best_val = rep.accuracy;
            p.best_epoch = p.epoch;
            let mut best = model.clone();
            best.training = serde_json::json!({
                "epoch": p.epoch,
                "val_accuracy": rep.accuracy,
                "val_firing_rate_hz": rep.firing_rate_hz,
                "split_rule": opts.split_rule,
            });
            self.best = Some(best);
        }
        p.word_head = self.tn.word_head();
        p.embedding_head = self.tn.embedding_head();
        model.training = progress_record(p);
        let optim = self
            .optim
            .into_bytes()
            .map_err(|e| anyhow::anyhow!("optimizer state: {e:?}"))?;
        let best = self.best.as_ref().expect("set above");
        ckpts.save(p.epoch, &model, &optim, best)?;
        // The log is derived from the checkpoint, so it never runs ahead of it.
        atomic_write(&opts.run_dir.join("log.csv"), log_csv(&p.log).as_bytes())?;
        Ok(())
    }

    /// The network as it stands, as a model file with `training` as its record.
    fn current_model(
        &self,
        opts: &TrainOptions,
        data: &RunData,
        training: serde_json::Value,
    ) -> Model {
        build_model(
            opts,
            &data.labels,
            self.mean.clone(),
            self.std.clone(),
            self.tn.to_network(),
            training,
        )
    }
}

fn progress_record(p: &Progress) -> serde_json::Value {
    serde_json::json!({ "progress": p })
}

/// The best validation epoch, tested once on the held-out test speakers, and saved.
fn finish(opts: &TrainOptions, data: &RunData, run: &Run) -> Result<Model> {
    let p = &run.progress;
    let mut best = run
        .best
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no epoch was trained"))?;
    let rate = opts.features.sample_rate;
    let (test, _) = load_labeled(&data.ds, Some(Split::Test), &data.labels, rate);
    let (rep, _) = evaluate(&best, &test);
    eprintln!(
        "best epoch {} (val {:.2}%): test {:.2}% on {} clips, {:.2} Hz",
        p.best_epoch,
        100.0 * p.best_val,
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
        "best_epoch": p.best_epoch,
        "val_accuracy": p.best_val,
        "test_accuracy": rep.accuracy,
        "test_clips": rep.n,
        "test_firing_rate_hz": rep.firing_rate_hz,
        "test_per_layer_hz": rep.per_layer_hz,
        "seed": opts.seed,
        "wall_time_s": p.elapsed_s,
        "options": opts,
        "date": crate::util::today_utc(),
    });
    // Replay for `retrain` where the data is not at hand.
    best.replay = Some(model_file_store(&best, &data.ds, opts.seed)?);
    best.save(&opts.out)?;
    atomic_write(
        &opts.run_dir.join("best.safetensors"),
        &std::fs::read(&opts.out)?,
    )?;
    atomic_write(
        &opts.run_dir.join("test_report.txt"),
        rep.to_text().as_bytes(),
    )?;
    Ok(best)
}

/// Loads `--init` before anything else: an unusable starting model fails at once.
fn check_init(opts: &TrainOptions) -> Result<()> {
    let Some(init) = &opts.init else {
        return Ok(());
    };
    let m = Model::load(init)?;
    match opts.init_member {
        None if m.net.len() > 1 => bail!(
            "--init {}: an ensemble of {} networks; training starts from one (--init-member K)",
            init.display(),
            m.net.len()
        ),
        Some(k) if k >= m.net.len() => bail!(
            "--init-member {k}: {} has networks 0 to {}",
            init.display(),
            m.net.len() - 1
        ),
        _ => Ok(()),
    }
}

/// The starting weights and normaliser of `--init` (fine-tuning): its architecture and
/// front end become the run's.
fn init_from(
    path: &std::path::Path,
    opts: &mut TrainOptions,
    labels: &[String],
) -> Result<(Vec<f32>, Vec<f32>, Network)> {
    let m = Model::load(path)?;
    let m = match opts.init_member {
        Some(k) => m
            .member(k)
            .with_context(|| format!("--init-member {k}: no such network"))?,
        None => m,
    };
    if m.labels() != labels {
        bail!(
            "--init {}: its labels ({}) are not this task's ({})",
            path.display(),
            m.labels().join(","),
            labels.join(",")
        );
    }
    opts.features = m.config.features.clone();
    opts.encoder = m.config.encoder.clone();
    let (mean, std) = (m.config.norm_mean.clone(), m.config.norm_std.clone());
    let net = m.net.into_first();
    // The network's own shape: an ensemble's members may differ from its first.
    opts.network = net.config.clone();
    Ok((mean, std, net))
}

/// A random network, its thresholds calibrated on a few real clips of every class.
fn fresh_network(opts: &TrainOptions, data: &RunData) -> (Vec<f32>, Vec<f32>, Network) {
    let (mean, std) = band_stats(&data.set, &opts.features);
    let c_in = opts.encoder.out_channels(opts.features.n_mels);
    let mut net = random_network(&opts.network, c_in, data.labels.len(), opts.seed);
    let norm = Normalizer::new(&mean, &std);
    let mut mf = MelFrame::new(&opts.features);
    let probe: Vec<Vec<f32>> = data
        .set
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
    (mean, std, net)
}

/// The word head's weights: the checkpoint's, or fresh ones.
fn word_head_weights(
    opts: &TrainOptions,
    set: &TrainSet,
    c: usize,
    progress: &Progress,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let words = set.words.len();
    let (w, b) = progress.word_head.clone().unwrap_or_else(|| {
        let mut r = Rng::new(opts.seed ^ 0x00f0_0d5e);
        let scale = 1.0 / (c as f32).sqrt();
        let w = (0..c * words).map(|_| r.normal() * scale).collect();
        (w, vec![0.0; words])
    });
    if w.len() != c * words {
        bail!("the checkpoint's word head does not fit this data's vocabulary");
    }
    Ok((w, b))
}

/// The embedding head's weights: the checkpoint's, or small random ones.
fn embedding_head_weights(
    opts: &TrainOptions,
    e: &Embedder,
    c: usize,
    progress: &Progress,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let (w, b) = progress.embedding_head.clone().unwrap_or_else(|| {
        let mut r = Rng::new(opts.seed ^ 0x0e3b_edd1);
        let scale = 1.0 / (c as f32).sqrt();
        let w = (0..c * e.dim).map(|_| r.normal() * scale).collect();
        (w, vec![0.0; e.dim])
    });
    if w.len() != c * e.dim {
        bail!("the checkpoint's embedding head does not fit this network");
    }
    Ok((w, b))
}

fn progress_bar(len: usize, epoch: usize, epochs: usize) -> indicatif::ProgressBar {
    let pb = indicatif::ProgressBar::new(len as u64);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg}")
    {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_prefix(format!("{epoch}/{epochs}"));
    pb
}

/// Running sums of an epoch, kept on the device.
struct Sums {
    loss: Tensor<1>,
    /// The embedding loss, when there is an embedding head.
    emb: Option<Tensor<1>>,
    correct: Tensor<1, Int>,
    rate: Tensor<1>,
    steps: usize,
    seen: usize,
}

/// What the host reads of `Sums`: means per step or clip.
struct Means {
    loss: f64,
    acc: f64,
    /// Mean firing probability per frame over layers.
    rate: f64,
    emb: Option<f64>,
}

impl Means {
    fn message(&self, frame_rate: f32) -> String {
        let emb = self
            .emb
            .map_or(String::new(), |e| format!(" embedding {e:.3}"));
        format!(
            "loss {:.3} acc {:.1}% rate {:.1} Hz{emb}",
            self.loss,
            100.0 * self.acc,
            self.rate * frame_rate as f64
        )
    }
}

impl Sums {
    fn new(device: &Device) -> Self {
        Sums {
            loss: Tensor::zeros([1], device),
            emb: None,
            correct: Tensor::zeros([1], device),
            rate: Tensor::zeros([1], device),
            steps: 0,
            seen: 0,
        }
    }

    fn add(
        &mut self,
        fwd: &Forward,
        loss: &Tensor<1>,
        emb: Option<Tensor<1>>,
        y: Tensor<1, Int>,
        b: usize,
    ) {
        let n_layers = fwd.rates.len().max(1) as f32;
        let rate = fwd
            .rates
            .iter()
            .map(|r| r.clone().detach())
            .reduce(|a, r| a + r)
            .map_or_else(|| self.rate.zeros_like(), |r| r.div_scalar(n_layers));
        let hits = fwd
            .logits
            .clone()
            .detach()
            .argmax(1)
            .reshape([b])
            .equal(y)
            .int()
            .sum();
        self.loss = self.loss.clone() + loss.clone().detach();
        if let Some(e) = emb.map(|e| e.detach()) {
            self.emb = Some(match self.emb.take() {
                Some(s) => s + e,
                None => e,
            });
        }
        self.rate = self.rate.clone() + rate;
        self.correct = self.correct.clone() + hits;
        self.steps += 1;
        self.seen += b;
    }

    /// Reads the sums back (one host sync).
    fn read(&self) -> Result<Means> {
        let scalar = |t: Tensor<1>| -> Result<f64> {
            let v = t
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .map_err(|e| anyhow::anyhow!("reading training statistics: {e:?}"))?;
            Ok(v.first().copied().unwrap_or(f32::NAN) as f64)
        };
        let steps = self.steps.max(1) as f64;
        Ok(Means {
            loss: scalar(self.loss.clone())? / steps,
            acc: scalar(self.correct.clone().float())? / self.seen.max(1) as f64,
            rate: scalar(self.rate.clone())? / steps,
            emb: match &self.emb {
                Some(e) => Some(scalar(e.clone())? / steps),
                None => None,
            },
        })
    }
}

/// The per-epoch log as CSV.
fn log_csv(log: &[EpochLog]) -> String {
    let mut out = String::from(
        "epoch,lr,loss,train_acc,train_rate_hz,val_acc,val_rate_hz,clips_per_s,elapsed_s,embedding_loss\n",
    );
    for l in log {
        let emb = l
            .embedding_loss
            .map_or(String::new(), |e| format!("{e:.5}"));
        out.push_str(&format!(
            "{},{:.6},{:.5},{:.5},{:.3},{:.5},{:.3},{:.1},{:.1},{emb}\n",
            l.epoch,
            l.lr,
            l.loss,
            l.train_acc,
            l.train_rate_hz,
            l.val_acc,
            l.val_rate_hz,
            l.clips_per_s,
            l.elapsed_s
        ));
    }
    out
}
