use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;

use spikeword::Model;
use spikeword::data::{Dataset, Split, SplitRule};
use spikeword::data::{LabeledAudio, load_labeled};
use spikeword::eval::{evaluate, evaluate_integer, model_split_rule};
use spikeword::snn::{FixedSpec, LeakRounding, fixed};

#[derive(clap::Args)]
pub struct Args {
    /// Model file (default: the bundled model).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Folder in the Speech Commands layout.
    #[arg(long, env = "SPIKEWORD_DATA")]
    data: PathBuf,
    /// Only this part of the speaker hash split.
    #[arg(long, value_enum)]
    split: Option<Split>,
    /// Rule behind --split (default: the one the model was trained with).
    #[arg(long, value_enum)]
    split_rule: Option<SplitRule>,
    /// Word folders to leave out (comma separated), e.g. words that became labels.
    #[arg(long, value_delimiter = ',')]
    ignore: Vec<String>,
    /// One JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// Confusion matrix picture.
    #[arg(long)]
    png: Option<PathBuf>,
    /// Run the networks in integer arithmetic, as a neuromorphic chip would (the model's
    /// weights must be on a grid: `spikeword quantize`), beside the float engine.
    #[arg(long)]
    integer: bool,
    /// With --integer: bits of an input value (current-injection encoders).
    #[arg(long, requires = "integer", value_parser = input_bits)]
    input_bits: Option<u32>,
    /// With --integer: inputs (normalised, in standard deviations) are clipped to ±this.
    #[arg(long, requires = "integer", value_parser = super::values::positive)]
    input_range: Option<f32>,
    /// With --integer: fraction bits of a leak factor.
    #[arg(long, requires = "integer", value_parser = leak_bits)]
    leak_bits: Option<u32>,
    /// With --integer: fraction bits a membrane keeps below its synapses' grid step.
    #[arg(long, requires = "integer", value_parser = frac_bits)]
    frac_bits: Option<u32>,
    /// With --integer: how a decayed membrane is brought back to whole units (Loihi
    /// truncates toward zero).
    #[arg(long, requires = "integer", value_enum)]
    leak_rounding: Option<LeakRounding>,
}

fn input_bits(s: &str) -> Result<u32, String> {
    super::values::whole_within(s, &fixed::INPUT_BITS)
}

fn leak_bits(s: &str) -> Result<u32, String> {
    super::values::whole_within(s, &fixed::LEAK_BITS)
}

fn frac_bits(s: &str) -> Result<u32, String> {
    super::values::whole_within(s, &fixed::FRAC_BITS)
}

impl Args {
    /// The integer engine's formats: the defaults with what was given.
    fn fixed_spec(&self) -> FixedSpec {
        let d = FixedSpec::default();
        FixedSpec {
            input_bits: self.input_bits.unwrap_or(d.input_bits),
            input_range: self.input_range.unwrap_or(d.input_range),
            leak_bits: self.leak_bits.unwrap_or(d.leak_bits),
            frac_bits: self.frac_bits.unwrap_or(d.frac_bits),
            leak_rounding: self.leak_rounding.unwrap_or(d.leak_rounding),
        }
    }
}

pub fn run(a: Args) -> Result<ExitCode> {
    let model = super::load_model(&a.model)?;
    // Before the clips are read: a float model is refused at once.
    let engine = match a.integer {
        true => Some(model.integer_engine(&a.fixed_spec())?),
        false => None,
    };
    let (data, failed) = labelled_clips(&model, &a.data, a.split, a.split_rule.clone(), &a.ignore)?;
    let rep = match &engine {
        Some(engine) => evaluate_integer(&model, engine, &data).0,
        None => evaluate(&model, &data).0,
    };
    if a.json {
        println!("{}", serde_json::to_string(&rep)?);
    } else {
        print!("{}", rep.to_text());
    }
    if let Some(p) = &a.png {
        spikeword::plot::confusion_png(&rep, p)?;
        eprintln!("wrote {}", p.display());
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// The clips of `dir` (one split of it, by the model's own speaker rule unless `rule`
/// names one) with the model's labels, and how many files could not be read (each named
/// on stderr); refuses a folder without a clip it could use.
pub fn labelled_clips(
    model: &Model,
    dir: &Path,
    split: Option<Split>,
    rule: Option<SplitRule>,
    ignore: &[String],
) -> Result<(Vec<LabeledAudio>, usize)> {
    let rule = match rule {
        Some(r) => r,
        None => model_split_rule(model)?,
    };
    let mut ds = Dataset::scan(dir, &rule)?;
    ds.clips.retain(|c| !ignore.contains(&c.word));
    let (data, failed) = load_labeled(
        &ds,
        split,
        model.labels(),
        model.config.features.sample_rate,
    );
    for (p, e) in &failed {
        eprintln!("skipped {p}: {e}");
    }
    if data.is_empty() {
        anyhow::bail!("no clips with known labels under {}", dir.display());
    }
    Ok((data, failed.len()))
}
