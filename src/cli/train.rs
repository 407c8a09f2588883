use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::ValueEnum;

use spikeword::config::{EncoderConfig, FeatureConfig, NetworkConfig, Reset, Surrogate};
use spikeword::train::augment::AugmentConfig;
use spikeword::train::{DeviceKind, SplitRule, Task, TrainOptions, train_for};

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
    /// Speech Commands folder (official layout).
    #[arg(long, default_value = "../shared/data/speech_commands")]
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
    #[arg(long, default_value_t = 110)]
    epochs: usize,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    #[arg(long, default_value_t = 3e-3)]
    lr: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, value_enum, default_value = "cpu")]
    device: DeviceKind,
    /// Training examples drawn per class and epoch.
    #[arg(long, default_value_t = 250)]
    per_class: usize,
    #[arg(long, value_enum, default_value = "current")]
    encoder: EncoderKind,
    /// Delta encoder threshold (in standard deviations of log-mel).
    #[arg(long, default_value_t = 0.5)]
    delta_threshold: f32,
    /// Channels of each spiking layer (comma separated).
    #[arg(long, value_delimiter = ',', default_value = "64,64,64")]
    channels: Vec<usize>,
    #[arg(long, value_delimiter = ',', default_value = "1,4,16")]
    dilations: Vec<usize>,
    #[arg(long, default_value_t = 4)]
    kernel: usize,
    #[arg(long, value_enum, default_value = "sigmoid")]
    surrogate: Surrogate,
    #[arg(long, default_value_t = 5.0)]
    surrogate_slope: f32,
    #[arg(long, value_enum, default_value = "subtract")]
    reset: Reset,
    /// Firing probability per frame above which the rate penalty applies (0.03 = 3 Hz).
    #[arg(long, default_value_t = 0.03)]
    rate_target: f32,
    #[arg(long, default_value_t = 4.0)]
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
    /// Spike dropout probability during training (robust, population-coded decisions).
    #[arg(long, default_value_t = 0.0)]
    dropout: f32,
    /// Weight of a training-only word head (every word of the data its own class) that
    /// keeps the features apart for words the task calls `_unknown_`; 0 = off.
    #[arg(long, default_value_t = 0.0)]
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
    #[arg(long, default_value_t = spikeword::train::net::BETA_MAX)]
    leak_max: f32,
    /// Stop after this many epochs of this invocation (resume later with --resume).
    #[arg(long)]
    stop_after: Option<usize>,
}

pub fn run(a: Args) -> Result<ExitCode> {
    if a.channels.len() != a.dilations.len() || a.channels.is_empty() {
        anyhow::bail!("--channels and --dilations must have the same, non-zero length");
    }
    if a.batch == 0 || a.epochs == 0 || a.per_class == 0 {
        anyhow::bail!("--batch, --epochs and --per-class must be positive");
    }
    if !(0.0..1.0).contains(&a.dropout) {
        anyhow::bail!("--dropout must be at least 0 and below 1");
    }
    if !(spikeword::train::net::BETA_MIN..1.0).contains(&a.leak_max) {
        anyhow::bail!(
            "--leak-max must be at least {} and below 1",
            spikeword::train::net::BETA_MIN
        );
    }
    if a.word_head < 0.0 {
        anyhow::bail!("--word-head must not be negative");
    }
    let encoder = match a.encoder {
        EncoderKind::Current => EncoderConfig::Current,
        EncoderKind::Delta => EncoderConfig::Delta {
            threshold: a.delta_threshold,
        },
        EncoderKind::Rate => EncoderConfig::Rate {
            max_prob: 1.0,
            seed: a.seed,
        },
    };
    let augment = if a.no_augment {
        AugmentConfig {
            shift_s: 0.0,
            gain_db: 0.0,
            speed: 0.0,
            noise_prob: 0.0,
            snr_db: (0.0, 0.0),
            freq_mask: 0,
            time_mask: 0,
            context_s: 0.0,
        }
    } else {
        AugmentConfig::default()
    };
    let opts = TrainOptions {
        data: a.data,
        extra: a.extra,
        run_dir: a.run_dir,
        out: a.out.clone(),
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
        encoder,
        network: NetworkConfig {
            channels: a.channels,
            kernel: a.kernel,
            dilations: a.dilations,
            reset: a.reset,
            surrogate: a.surrogate,
            surrogate_slope: a.surrogate_slope,
            decision_frames: a.decision_frames,
            ..NetworkConfig::default()
        },
        augment,
        init: a.init,
        dropout: a.dropout,
        word_head: a.word_head,
        word_head_exclude: a.word_head_exclude,
        leak_max: a.leak_max,
    };
    let model = train_for(opts, a.resume, a.stop_after)?;
    if model.training.get("progress").is_some() {
        println!("checkpoint saved; continue with --resume");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "saved {} (test accuracy {:.2} %)",
        a.out.display(),
        100.0 * model.training["test_accuracy"].as_f64().unwrap_or(0.0)
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
pub struct BenchArgs {
    #[arg(long, default_value_t = 64)]
    batch: usize,
    #[arg(long, default_value_t = 20)]
    steps: usize,
    #[arg(long, value_enum, default_value = "cpu")]
    device: DeviceKind,
}

/// Training throughput of the default network on random input (forward, backward, Adam
/// step, clamping), as one JSON line: the peer of scripts/torch_reference.py.
pub fn bench(a: BenchArgs) -> Result<ExitCode> {
    use burn::optim::{AdamConfig, GradientsParams};
    use burn::tensor::{Int, Tensor, TensorData};
    use spikeword::train::net::TrainNet;
    let dev = spikeword::train::trainer::burn_device(a.device)?.autodiff();
    let cfg = NetworkConfig::default();
    let mut net = spikeword::snn::random_network(&cfg, 40, 12, 1);
    let mut rng = spikeword::util::Rng::new(2);
    let probe: Vec<Vec<f32>> = (0..4)
        .map(|_| (0..98 * 40).map(|_| rng.normal()).collect())
        .collect();
    net.calibrate(&probe, 0.05);
    let mut tn = TrainNet::from_network(&net, &dev);
    let mut optim = AdamConfig::new().init();
    let (b, t) = (a.batch, 98);
    let xs: Vec<f32> = (0..b * 40 * t).map(|_| rng.normal()).collect();
    let ys: Vec<i64> = (0..b).map(|i| (i % 12) as i64).collect();
    let mut step = |tn: TrainNet| {
        let x: Tensor<3> = Tensor::from_data(TensorData::new(xs.clone(), [b, 40, t]), &dev);
        let y: Tensor<1, Int> = Tensor::from_data(TensorData::new(ys.clone(), [b]), &dev);
        let f = tn.forward(x);
        let l = spikeword::train::net::loss(&f, y, 0.03, 4.0);
        let grads = GradientsParams::from_grads(l.backward(), &tn);
        optim
            .step(1e-3, tn, grads)
            .clamp(spikeword::train::net::BETA_MAX)
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
        serde_json::json!({"clips_per_second": (a.steps * b) as f64 / secs, "batch": b, "steps": a.steps})
    );
    Ok(ExitCode::SUCCESS)
}
