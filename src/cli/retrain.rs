use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;

use spikeword::data::synth::{SynthOptions, synthesize};
use spikeword::train::retrain::{RetrainOptions, RetrainReport, retrain};

#[derive(clap::Args)]
pub struct Args {
    /// Folder of examples, one sub-folder per word (repeatable).
    #[arg(long, required = true)]
    data: Vec<PathBuf>,
    /// New model file (never the base model).
    #[arg(long)]
    out: PathBuf,
    /// Base model (default: the bundled one).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Only the new words (plus _silence_ and _unknown_), instead of old + new.
    #[arg(long)]
    replace: bool,
    /// Speech Commands folder replayed for old words, unknown words and noise (official
    /// layout); without it (and without SPIKEWORD_DATA) the clips stored in the model
    /// file are replayed (if it has them).
    #[arg(long, env = "SPIKEWORD_DATA")]
    replay: Option<PathBuf>,
    /// Also voice each new word with the TTS engines (needs espeak-ng/flite/festival).
    #[arg(long)]
    tts: bool,
    /// Also fine-tune the spiking layers at a low learning rate (slower; more adaptable).
    #[arg(long)]
    finetune: bool,
    /// Synthetic clips per word and TTS engine with --tts.
    #[arg(long, default_value_t = 4, value_parser = super::values::tts_variants)]
    tts_variants: usize,
    /// Epochs of fine-tuning with --finetune.
    #[arg(long, default_value_t = 2, value_parser = super::values::count)]
    finetune_epochs: usize,
    /// Largest share of held-out old-word clips the new words may take over, as a fraction
    /// (0.01 = 1 %; the new words' biases are lowered until this holds).
    #[arg(long, default_value_t = 0.01, value_parser = super::values::probability)]
    max_old_drop: f32,
    /// Vocal-tract-length perturbation of the augmented copies: formants moved by a
    /// factor within 1 ± R, as in other speakers' voices (0: none).
    #[arg(long, default_value_t = 0.0, value_parser = super::values::vtlp)]
    vtlp: f32,
    /// Augmented copies per example.
    #[arg(long, default_value_t = 40, value_parser = super::values::copies)]
    copies: usize,
    #[arg(long, default_value_t = 30, value_parser = super::values::count)]
    epochs: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let (base, base_path) = super::load_base_model(&a.model, &a.out)?;
    let mut extra = Vec::new();
    let tmp = std::env::temp_dir().join(format!("spikeword-tts-{}", std::process::id()));
    if a.tts {
        synthesize_words(&a, &tmp)?;
        extra.push(tmp.clone());
    }
    let result = retrain(&base, &retrain_options(&a, extra));
    if a.tts {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    let (model, report) = result?;
    model.save(&a.out)?;
    let card = a.out.with_extension("md");
    write_model_card(&card, &a, &base_path, &report)?;
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_report(&a, &report, &card);
    }
    Ok(ExitCode::SUCCESS)
}

/// The word folders of every `--data` folder, sorted, each once.
fn words_in(data: &[PathBuf]) -> Result<Vec<String>> {
    let mut words = Vec::new();
    for d in data {
        for e in std::fs::read_dir(d)? {
            let p = e?.path();
            if p.is_dir() {
                words.push(p.file_name().unwrap().to_string_lossy().to_string());
            }
        }
    }
    words.sort();
    words.dedup();
    Ok(words)
}

/// Voices the new words with the TTS engines into `out` (`--tts`).
fn synthesize_words(a: &Args, out: &Path) -> Result<()> {
    let rep = synthesize(&SynthOptions {
        words: words_in(&a.data)?,
        out: out.to_path_buf(),
        variants: a.tts_variants,
        seed: a.seed,
        engines: vec!["espeak".into(), "flite".into(), "festival".into()],
    })?;
    eprintln!("tts: {} synthetic examples added for training", rep.total());
    Ok(())
}

fn retrain_options(a: &Args, extra: Vec<PathBuf>) -> RetrainOptions {
    RetrainOptions {
        data: a.data.clone(),
        replay: a.replay.clone(),
        replace: a.replace,
        copies: a.copies,
        epochs: a.epochs,
        seed: a.seed,
        extra,
        finetune_epochs: if a.finetune { a.finetune_epochs } else { 0 },
        max_old_drop: f64::from(a.max_old_drop),
        vtlp: a.vtlp,
    }
}

/// A share as a percentage, or "n/a" where nothing was measured.
fn pct(v: Option<f64>) -> String {
    v.map_or("n/a".to_string(), |x| format!("{:.1} %", 100.0 * x))
}

/// Writes the Markdown model card next to the model: what went in, and how it did.
fn write_model_card(card: &Path, a: &Args, base_path: &Path, report: &RetrainReport) -> Result<()> {
    let text = format!(
        "# Retrained model `{}`\n\nBase: `{}`. New words: {}. Labels: {}.\n\nExamples per word: {}.\n\nCommand: `spikeword {}`\n\n\
         | measure | value |\n|---|---|\n| new words, {} ({} clips) | {} |\n| old words (Speech Commands validation speakers) | {} |\n\
         | unknown words taken for a new word | {} |\n| noise taken for a new word | {} |\n\
         | new words' scores lowered to keep the old words (`--max-old-drop` {:.1} %) | {:.3} |\n| replay | {} |\n| time | {:.1} s |\n\nWarnings: {}\n\nDate: {}\n",
        a.out.display(),
        base_path.display(),
        report.new_words.join(", "),
        report.labels.join(" "),
        report
            .examples_per_word
            .iter()
            .map(|(w, n)| format!("{w} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        std::env::args().skip(1).collect::<Vec<_>>().join(" "),
        report.validation_by,
        report.validation_n,
        pct(report.validation_accuracy),
        pct(report.old_accuracy),
        pct(report.false_accept_unknown),
        pct(report.false_accept_noise),
        100.0 * f64::from(a.max_old_drop),
        report.new_word_bias_shift,
        report.replay,
        report.seconds,
        if report.warnings.is_empty() {
            "none".into()
        } else {
            report.warnings.join("; ")
        },
        spikeword::util::today_utc(),
    );
    spikeword::util::atomic_write(card, text.as_bytes())?;
    Ok(())
}

/// The human-readable summary on stdout.
fn print_report(a: &Args, report: &RetrainReport, card: &Path) {
    println!(
        "{} labels ({} new) -> {} [{:.1} s]\n  new words ({}): {}\n  old words: {}\n  false accepts: unknown {}, noise {}\n  replay: {}\n  model card: {}",
        report.labels.len(),
        report.new_words.len(),
        a.out.display(),
        report.seconds,
        report.validation_by,
        pct(report.validation_accuracy),
        pct(report.old_accuracy),
        pct(report.false_accept_unknown),
        pct(report.false_accept_noise),
        report.replay,
        card.display()
    );
    if report.new_word_bias_shift > 0.0 {
        println!(
            "  new words' scores lowered by {:.3} so that at most {:.1} % of held-out old-word clips turn into new words (--max-old-drop)",
            report.new_word_bias_shift,
            100.0 * f64::from(a.max_old_drop)
        );
    }
}
