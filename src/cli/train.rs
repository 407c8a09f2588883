use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::ValueEnum;

use spikeword::batch::DeviceKind;
use spikeword::config::{EncoderConfig, FeatureConfig, NetworkConfig, Reset, Surrogate};
use spikeword::data::{SplitRule, Task};
use spikeword::train::augment::AugmentConfig;
use spikeword::train::distill::{DistillConfig, EmbedConfig};
use spikeword::train::{TrainOptions, train_for};

#[derive(Clone, Copy, ValueEnum)]
enum EncoderKind {
    /// Analog log-mel injected as current into the first LIF layer.
    Current,
    /// ON/OFF send-on-delta spikes.
    Delta,
    /// Bernoulli rate spikes.
    Rate,
}

#[derive(clap::Args)]
pub struct Args {
    /// Speech Commands folder (official layout, e.g. from `spikeword data fetch`).
    #[arg(long, env = "SPIKEWORD_DATA")]
    data: PathBuf,
    /// Extra training clips in the same layout (e.g. from `data synth`).
    #[arg(long)]
    extra: Vec<PathBuf>,
    /// Where the final model goes.
    #[arg(long, default_value = "models/gsc12.safetensors")]
    out: PathBuf,
    /// Checkpoints, log.csv and reports.
    #[arg(long, default_value = "runs/gsc12")]
    run_dir: PathBuf,
    #[arg(long, value_enum, default_value = "gsc12")]
    task: Task,
    /// Speaker split: `official` (list files / README hash) or `salted` (a fresh 80/10/10
    /// speaker split, for partial copies such as the shared folder).
    #[arg(long, value_enum, default_value = "official")]
    split_rule: SplitRule,
    #[arg(long, default_value_t = 110, value_parser = super::values::count)]
    epochs: usize,
    #[arg(long, default_value_t = 32, value_parser = super::values::count)]
    batch: usize,
    #[arg(long, default_value_t = 3e-3, value_parser = super::values::learning_rate)]
    lr: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, value_enum, default_value = "cpu")]
    device: DeviceKind,
    /// Training examples drawn per class and epoch.
    #[arg(long, default_value_t = 250, value_parser = super::values::count)]
    per_class: usize,
    #[arg(long, value_enum, default_value = "current")]
    encoder: EncoderKind,
    /// Delta encoder threshold (in standard deviations of log-mel).
    #[arg(long, default_value_t = 0.5, value_parser = super::values::positive)]
    delta_threshold: f32,
    /// Channels of each spiking layer (comma separated).
    #[arg(long, value_delimiter = ',', default_value = "64,64,64", value_parser = super::values::count)]
    channels: Vec<usize>,
    #[arg(long, value_delimiter = ',', default_value = "1,4,16", value_parser = super::values::count)]
    dilations: Vec<usize>,
    #[arg(long, default_value_t = 4, value_parser = super::values::count)]
    kernel: usize,
    #[arg(long, value_enum, default_value = "sigmoid")]
    surrogate: Surrogate,
    #[arg(long, default_value_t = 5.0, value_parser = super::values::positive)]
    surrogate_slope: f32,
    #[arg(long, value_enum, default_value = "subtract")]
    reset: Reset,
    /// Firing probability per frame above which the rate penalty applies (0.03 = 3 Hz).
    #[arg(long, default_value_t = 0.03, value_parser = super::values::probability)]
    rate_target: f32,
    #[arg(long, default_value_t = 4.0, value_parser = super::values::non_negative)]
    rate_weight: f32,
    /// Disable augmentation (for ablations).
    #[arg(long)]
    no_augment: bool,
    /// Continue the run in --run-dir from its last checkpoint.
    #[arg(long)]
    resume: bool,
    /// Start from this model's weights (fine-tuning; architecture and labels are its own).
    #[arg(long)]
    init: Option<PathBuf>,
    /// With an ensemble as --init: the network (0-based) to start from.
    #[arg(long, requires = "init")]
    init_member: Option<usize>,
    /// Spike dropout probability during training (robust, population-coded decisions).
    #[arg(long, default_value_t = 0.0, value_parser = super::values::below_one)]
    dropout: f32,
    /// Weight of a training-only word head (every word of the data its own class) that
    /// keeps the features apart for words the task calls `_unknown_`; 0 = off.
    #[arg(long, default_value_t = 0.0, value_parser = super::values::non_negative)]
    word_head: f32,
    /// Words the word head lumps together (comma separated), e.g. words kept new for a
    /// retraining test.
    #[arg(long, value_delimiter = ',')]
    word_head_exclude: Vec<String>,
    /// Decide on the last N frames of a clip only (0 = all 98); 35 or fewer keeps the
    /// 640 ms receptive field of every decision frame inside the clip (what came before
    /// still reaches the decision through the leaky membranes and readout).
    #[arg(long, default_value_t = 0)]
    decision_frames: usize,
    /// Largest membrane leak β of the spiking layers (memory τ = 1/(1−β) frames): lower
    /// forgets what came before a word sooner, so decisions inside a stream hold.
    #[arg(long, default_value_t = spikeword::batch::net::BETA_MAX)]
    leak_max: f32,
    /// How the layers run: fused (CPU default), fused-lif (GPU default) or graph (the
    /// reference); for benchmarks.
    #[arg(long, value_enum, hide = true)]
    layer_ops: Option<OpsArg>,
    /// Distil this teacher: the keyword model (TFLite, cargo feature `teacher`, e.g.
    /// models/teachers/mlperf_dscnn/kws_ref_model_f32weights.tflite) or a spikeword model
    /// file (e.g. an ensemble of wider networks). It labels every augmented clip as the
    /// student hears it; given more than once, the student learns the mean of their
    /// softened posteriors.
    #[arg(long)]
    teacher: Vec<PathBuf>,
    /// Share of the loss on the teacher's posteriors (the rest on the true labels).
    #[arg(long, default_value_t = 0.7, value_parser = super::values::probability)]
    distill_weight: f32,
    /// Temperature on the teacher's log-probabilities and the student's scores.
    #[arg(long, default_value_t = 3.0, value_parser = super::values::positive)]
    temperature: f32,
    /// Learn this speech embedding's 96-d vectors (ONNX, cargo feature `teacher`) with a
    /// training-only head on the last layer's spike rates, over the same 775 ms windows
    /// of every augmented clip; e.g. models/teachers/speech_embedding/speech-embedding-b1.onnx.
    #[arg(long)]
    embedding_teacher: Option<PathBuf>,
    /// Weight of the embedding loss (1 − cosine similarity) against the clip loss.
    #[arg(long, default_value_t = 1.0, value_parser = super::values::positive)]
    embedding_weight: f32,
    /// Probability of mixing a second training clip into an example at a random ratio.
    #[arg(long, default_value_t = 0.0, value_parser = super::values::probability)]
    mixup: f32,
    /// Vocal-tract-length perturbation: warp each clip's spectrum by a factor drawn from
    /// 1 ± this (0.1 is the usual range; 0: off).
    #[arg(long, default_value_t = 0.0, value_parser = super::values::vtlp)]
    vtlp: f32,
    /// Stop after this many epochs of this invocation (resume later with --resume).
    #[arg(long, value_parser = super::values::count)]
    stop_after: Option<usize>,
}

pub fn run(a: Args) -> Result<ExitCode> {
    check_leak_and_window(&a)?;
    let (out, resume, stop_after) = (a.out.clone(), a.resume, a.stop_after);
    let model = train_for(train_options(a)?, resume, stop_after)?;
    if model.training.get("progress").is_some() {
        println!("checkpoint saved; continue with --resume");
        return Ok(ExitCode::SUCCESS);
    }
    let acc = model.training["test_accuracy"]
        .as_f64()
        .map_or("n/a".to_string(), |v| format!("{:.2} %", 100.0 * v));
    println!("saved {} (test accuracy {acc})", out.display());
    Ok(ExitCode::SUCCESS)
}

/// Checks `--leak-max` and `--decision-frames`, which clap cannot check alone.
fn check_leak_and_window(a: &Args) -> Result<()> {
    if !(spikeword::batch::net::BETA_MIN..1.0).contains(&a.leak_max) {
        anyhow::bail!(
            "--leak-max must be at least {} and below 1",
            spikeword::batch::net::BETA_MIN
        );
    }
    let clip = FeatureConfig::default().clip_frames();
    if a.decision_frames > clip {
        anyhow::bail!(
            "--decision-frames {} is longer than a 1 s clip ({clip} frames)",
            a.decision_frames
        );
    }
    Ok(())
}

fn encoder_config(a: &Args) -> EncoderConfig {
    match a.encoder {
        EncoderKind::Current => EncoderConfig::Current,
        EncoderKind::Delta => EncoderConfig::Delta {
            threshold: a.delta_threshold,
        },
        EncoderKind::Rate => EncoderConfig::Rate {
            max_prob: 1.0,
            seed: a.seed,
        },
    }
}

/// The default augmentation (with `--mixup` and `--vtlp`), or none at all (`--no-augment`).
fn augment_config(no_augment: bool, mixup: f32, vtlp: f32) -> AugmentConfig {
    if !no_augment {
        return AugmentConfig {
            mixup,
            vtlp,
            ..AugmentConfig::default()
        };
    }
    AugmentConfig {
        shift_s: 0.0,
        gain_db: 0.0,
        speed: 0.0,
        noise_prob: 0.0,
        snr_db: (0.0, 0.0),
        freq_mask: 0,
        time_mask: 0,
        context_s: 0.0,
        mixup: 0.0,
        vtlp: 0.0,
    }
}

fn network_config(a: &Args) -> Result<NetworkConfig> {
    let network = NetworkConfig {
        channels: a.channels.clone(),
        kernel: a.kernel,
        dilations: a.dilations.clone(),
        reset: a.reset,
        surrogate: a.surrogate,
        surrogate_slope: a.surrogate_slope,
        decision_frames: a.decision_frames,
        ..NetworkConfig::default()
    };
    network
        .validate()
        .map_err(|e| anyhow::anyhow!("--channels/--dilations/--kernel: {e}"))?;
    Ok(network)
}

fn train_options(a: Args) -> Result<TrainOptions> {
    let distill = (!a.teacher.is_empty()).then(|| DistillConfig {
        teachers: a.teacher.clone(),
        weight: a.distill_weight,
        temperature: a.temperature,
    });
    if let Some(d) = &distill {
        spikeword::train::distill::check(d)?;
    }
    let embed = a.embedding_teacher.clone().map(|teacher| EmbedConfig {
        teacher,
        weight: a.embedding_weight,
    });
    if let Some(e) = &embed {
        spikeword::train::distill::check_embed(e)?;
    }
    Ok(TrainOptions {
        encoder: encoder_config(&a),
        embed,
        augment: augment_config(a.no_augment, a.mixup, a.vtlp),
        distill,
        network: network_config(&a)?,
        data: a.data,
        extra: a.extra,
        run_dir: a.run_dir,
        out: a.out,
        task: a.task,
        split_rule: a.split_rule,
        epochs: a.epochs,
        batch: a.batch,
        lr: a.lr,
        seed: a.seed,
        device: a.device,
        per_class: a.per_class,
        rate_target: a.rate_target,
        rate_weight: a.rate_weight,
        features: FeatureConfig::default(),
        init: a.init,
        init_member: a.init_member,
        dropout: a.dropout,
        word_head: a.word_head,
        word_head_exclude: a.word_head_exclude,
        leak_max: a.leak_max,
        ops: a.layer_ops.map(OpsArg::into_impl),
    })
}

#[derive(clap::Args)]
pub struct BenchArgs {
    #[arg(long, default_value_t = 64, value_parser = super::values::count)]
    batch: usize,
    #[arg(long, default_value_t = 20, value_parser = super::values::count)]
    steps: usize,
    #[arg(long, value_enum, default_value = "cpu")]
    device: DeviceKind,
    /// How the layers run: the fused CPU operations (CPU default), burn's convolution
    /// and the fused LIF operation (GPU default), or burn's convolution and the per-frame
    /// LIF graph (the reference the fused ones are measured against).
    #[arg(long, value_enum)]
    layer_ops: Option<OpsArg>,
}

#[derive(Clone, Copy, ValueEnum)]
enum OpsArg {
    Fused,
    FusedLif,
    Graph,
}

impl OpsArg {
    fn into_impl(self) -> spikeword::batch::LayerOps {
        match self {
            OpsArg::Fused => spikeword::batch::LayerOps::Fused,
            OpsArg::FusedLif => spikeword::batch::LayerOps::FusedLif,
            OpsArg::Graph => spikeword::batch::LayerOps::Graph,
        }
    }
}

/// Training throughput of the default network on random input (forward, backward, Adam
/// step, clamping), as one JSON line: the peer of scripts/torch_reference.py.
pub fn bench(a: BenchArgs) -> Result<ExitCode> {
    use burn::optim::{AdamConfig, GradientsParams};
    use burn::tensor::{Int, Tensor, TensorData};
    use spikeword::batch::net::TrainNet;
    let dev = spikeword::batch::burn_device(a.device)?.autodiff();
    let cfg = NetworkConfig::default();
    let mut net = spikeword::snn::random_network(&cfg, 40, 12, 1);
    let mut rng = spikeword::util::Rng::new(2);
    let probe: Vec<Vec<f32>> = (0..4)
        .map(|_| (0..98 * 40).map(|_| rng.normal()).collect())
        .collect();
    net.calibrate(&probe, 0.05);
    let ops = a
        .layer_ops
        .map_or(spikeword::batch::ops_for(a.device), OpsArg::into_impl);
    let mut tn = TrainNet::from_network(&net, &dev).with_ops(ops);
    let mut optim = AdamConfig::new().init();
    let (b, t) = (a.batch, 98);
    let xs: Vec<f32> = (0..b * 40 * t).map(|_| rng.normal()).collect();
    let ys: Vec<i64> = (0..b).map(|i| (i % 12) as i64).collect();
    let mut step = |tn: TrainNet| {
        let x: Tensor<3> = Tensor::from_data(TensorData::new(xs.clone(), [b, 40, t]), &dev);
        let y: Tensor<1, Int> = Tensor::from_data(TensorData::new(ys.clone(), [b]), &dev);
        let f = tn.forward(x);
        let l = spikeword::batch::net::loss(&f, y, 0.03, 4.0);
        let grads = GradientsParams::from_grads(l.backward(), &tn);
        optim
            .step(1e-3, tn, grads)
            .clamp(spikeword::batch::net::BETA_MAX)
    };
    for _ in 0..3 {
        tn = step(tn);
    }
    let _ = tn.readout_b.val().into_data(); // sync before timing
    let t0 = std::time::Instant::now();
    for _ in 0..a.steps {
        tn = step(tn);
    }
    let _ = tn.readout_b.val().into_data();
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({"clips_per_second": (a.steps * b) as f64 / secs, "batch": b, "steps": a.steps, "layer_ops": format!("{ops:?}").to_lowercase()})
    );
    Ok(ExitCode::SUCCESS)
}
