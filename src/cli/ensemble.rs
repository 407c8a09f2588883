//! `spikeword ensemble`: several trained models of one front end in one file, voting by
//! their mean class scores (steadier inside a stream, more accurate; cost × members).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use spikeword::Model;
use spikeword::data::load_labeled;
use spikeword::data::{Dataset, Split};
use spikeword::eval::{evaluate, model_split_rule};
use spikeword::model::split_spec;
use spikeword::train::joint_readout::{JointFitOptions, JointFitReport, fit_joint_readout};
use spikeword::train::negatives::{MiningOptions, MiningReport, mine};
use spikeword::train::replay_pick::model_file_store;

#[derive(clap::Args)]
pub struct Args {
    /// Member model files (each from `spikeword train`, or ensembles themselves; one
    /// ensemble alone: its readouts refitted with `--joint-readout`). `FILE@N` takes
    /// network N (0-based) of an ensemble file, `FILE@A-B` networks A to B.
    #[arg(required = true, num_args = 1..)]
    models: Vec<String>,
    /// The ensemble file to write.
    #[arg(long)]
    out: PathBuf,
    /// Speech Commands folder (official layout): the ensemble is tested on its test
    /// speakers (the members' split) and the result recorded in the file. Without it
    /// (and without SPIKEWORD_DATA) the ensemble is written untested.
    #[arg(long, env = "SPIKEWORD_DATA")]
    data: Option<PathBuf>,
    /// The members vote over the last N frames of a 1 s clip (0: all 98), which is also
    /// the detector's smoothing window. Leaving out the first frames, whose synapses
    /// still reach before the clip, makes decisions inside a stream closer to the clip's.
    #[arg(long)]
    decision_frames: Option<usize>,
    /// Refit all members' readouts together on the training speakers of `--data` (spiking
    /// layers frozen; each clip alone and inside silence, noise and another clip); kept
    /// only if the validation speakers' accuracy does not drop.
    #[arg(long)]
    joint_readout: bool,
    /// Epochs of the joint readout fit.
    #[arg(long, default_value_t = JointFitOptions::default().epochs, value_parser = super::values::count)]
    joint_epochs: usize,
    /// Weight of the term that pulls a clip's in-context decision towards its decision alone.
    #[arg(long, default_value_t = JointFitOptions::default().consistency, value_parser = super::values::non_negative)]
    joint_consistency: f32,
    /// Windows per training clip moved 100–300 ms off it inside noise, labelled as the
    /// clip, in the joint fit: a detector scores every window, not only the clip's.
    #[arg(long, default_value_t = JointFitOptions::default().shifted)]
    joint_shifted: usize,
    /// Validation accuracy (percentage points) the joint fit may lose and still be kept.
    #[arg(long, default_value_t = 0.0, value_parser = super::values::non_negative)]
    joint_tolerance: f32,
    /// Minutes of running speech of the training speakers (other words back to back,
    /// synthetic sentences without a command word, pauses) whose windows the joint fit
    /// also learns as `_unknown_`: where the ensemble comes closest to reporting a word,
    /// and windows at random. The fit runs plain, then with the windows the plainly
    /// fitted ensemble would fire on (once per `--negatives-rounds`). 0: none.
    #[arg(long, default_value_t = 0.0, value_parser = super::values::stream_minutes_or_none)]
    negatives_minutes: f32,
    /// Rounds of hard-negative mining: each round runs the ensemble as fitted so far over
    /// new running speech (another stream of the same length) and refits with all windows
    /// found so far, so that what still fires is learnt next.
    #[arg(long, default_value_t = 1, value_parser = super::values::mining_rounds)]
    negatives_rounds: usize,
    /// Hard negatives: windows whose highest word probability peaks at or above this.
    #[arg(long, default_value_t = MiningOptions::default().level, value_parser = super::values::probability)]
    negatives_level: f32,
    /// Windows at random per minute of running speech.
    #[arg(long, default_value_t = MiningOptions::default().random_per_minute)]
    negatives_random: usize,
    /// TTS engines voicing the training sentences (missing ones are skipped).
    #[arg(long, value_delimiter = ',', default_value = "espeak,flite,festival")]
    engines: Vec<String>,
    /// Seed of the joint fit (contexts and batch order).
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

pub fn run(a: Args) -> Result<ExitCode> {
    check_out_is_new(&a.out, &a.models)?;
    let mut model = combine(&a.models, a.decision_frames)?;
    let k = model.net.len();
    let ds = match &a.data {
        None => None,
        Some(dir) => Some(
            Dataset::scan(dir, &model_split_rule(&model)?)
                .with_context(|| format!("data {}", dir.display()))?,
        ),
    };
    if a.negatives_minutes > 0.0 && !a.joint_readout {
        bail!("--negatives-minutes is learnt by the joint readout: add --joint-readout");
    }
    if a.joint_readout {
        let Some(ds) = &ds else {
            bail!("--joint-readout needs the members' training data (--data DIR)");
        };
        joint_readout(&mut model, ds, &a)?;
    }
    if let Some(ds) = &ds {
        test_and_record(&mut model, ds)?;
        // Replay for `retrain` where the data is not at hand.
        model.replay = Some(model_file_store(&model, ds, a.seed)?);
    }
    if let Some(dir) = a.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    model.save(&a.out)?;
    eprintln!("saved {} ({k} networks)", a.out.display());
    Ok(ExitCode::SUCCESS)
}

/// Refuses to write the ensemble over one of its members.
fn check_out_is_new(out: &Path, models: &[String]) -> Result<()> {
    let same =
        |p: &Path| matches!((p.canonicalize(), out.canonicalize()), (Ok(x), Ok(y)) if x == y);
    for spec in models {
        if same(split_spec(spec).0) {
            bail!(
                "--out {} is one of the members: choose another file",
                out.display()
            );
        }
    }
    Ok(())
}

/// Loads the members into one ensemble, recording today's date and the member files.
fn combine(paths: &[String], decision_frames: Option<usize>) -> Result<Model> {
    let members = paths
        .iter()
        .enumerate()
        .map(|(k, p)| Model::load_spec(p).with_context(|| format!("member {}", k + 1)))
        .collect::<Result<Vec<_>>>()?;
    let mut model = Model::ensemble(members)?;
    if let Some(n) = decision_frames {
        model.set_decision_frames(n)?;
    }
    let date = spikeword::util::today_utc();
    model.training["date"] = date.into();
    model.training["member_files"] = paths.to_vec().into();
    Ok(model)
}

/// Refits the members' readouts together (`--joint-readout`) and records the fit.
fn joint_readout(model: &mut Model, ds: &Dataset, a: &Args) -> Result<()> {
    let opts = JointFitOptions {
        epochs: a.joint_epochs,
        consistency: a.joint_consistency,
        seed: a.seed,
        shifted: a.joint_shifted,
        tolerance: a.joint_tolerance as f64 / 100.0,
        ..JointFitOptions::default()
    };
    let mut rep = fit_joint_readout(model, ds, &opts, &[])?;
    print_fit(&rep);
    let plain = if rep.kept {
        rep.validation_after
    } else {
        rep.validation_before
    };
    let opts = JointFitOptions {
        reference: Some(plain),
        ..opts
    };
    if a.negatives_minutes > 0.0 {
        let mut negatives = Vec::new();
        let mut rounds = Vec::new();
        for round in 0..a.negatives_rounds {
            let mining = MiningOptions {
                minutes: a.negatives_minutes as f64,
                engines: a.engines.clone(),
                level: a.negatives_level,
                random_per_minute: a.negatives_random,
                seed: a.seed.wrapping_add(round as u64),
                ..MiningOptions::default()
            };
            let (found, mined) = mine(model, ds, &mining)?;
            print_mined(&mined);
            negatives.extend(found);
            rep = fit_joint_readout(model, ds, &opts, &negatives)?;
            print_fit(&rep);
            rounds.push(mined);
        }
        model.training["negatives"] = match rounds.len() {
            1 => serde_json::to_value(&rounds[0])?,
            _ => serde_json::to_value(&rounds)?,
        };
    }
    model.training["joint_readout"] = serde_json::to_value(&rep)?;
    Ok(())
}

fn print_mined(mined: &MiningReport) {
    eprintln!(
        "running speech: {:.0} min of the training speakers ({} other-word clips, {} sentences), {} hard negatives (peak ≥ {}) and {} at random",
        mined.stream_minutes,
        mined.other_word_clips,
        mined.sentences,
        mined.hard,
        mined.level,
        mined.random
    );
}

fn print_fit(rep: &JointFitReport) {
    eprintln!(
        "joint readout ({} training samples, {} epochs): validation {:.2} % -> {:.2} % on {} clips{}",
        rep.samples,
        rep.epochs,
        100.0 * rep.validation_before,
        100.0 * rep.validation_after,
        rep.validation_clips,
        if rep.kept {
            ""
        } else {
            "; worse on validation, the readouts before the fit are kept"
        }
    );
    if rep.negatives > 0 {
        eprintln!(
            "  running speech rejected {:.1} % -> {:.1} % of {} windows",
            100.0 * rep.negatives_rejected_before,
            100.0 * rep.negatives_rejected_after,
            rep.negatives
        );
    }
}

/// Tests the ensemble on the test speakers, prints the headline and records it.
fn test_and_record(model: &mut Model, ds: &Dataset) -> Result<()> {
    let (data, _) = load_labeled(
        ds,
        Some(Split::Test),
        model.labels(),
        model.config.features.sample_rate,
    );
    if data.is_empty() {
        bail!("no test clips in the data folder");
    }
    let (rep, _) = evaluate(model, &data);
    // The headline; `spikeword eval` gives classes and confusions.
    let text = rep.to_text();
    print!("{}", text.split("\n\n").next().unwrap_or(&text));
    println!();
    model.training["test_accuracy"] = rep.accuracy.into();
    model.training["test_clips"] = rep.n.into();
    model.training["test_firing_rate_hz"] = rep.firing_rate_hz.into();
    Ok(())
}
