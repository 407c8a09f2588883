//! `spikeword data`: synthetic speech from TTS engines, and the official archive.

use std::fs::File;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use spikeword::Model;
use spikeword::audio::wav::write_pcm16;
use spikeword::data::Dataset;
use spikeword::data::synth::{SynthOptions, synthesize};
use spikeword::eval::model_split_rule;
use spikeword::train::negatives::{MiningOptions, mine};

/// The official Speech Commands v0.02 archive.
const ARCHIVE_URL: &str = "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz";
const ARCHIVE_NAME: &str = "speech_commands_v0.02.tar.gz";
/// SHA-256 and size of `speech_commands_v0.02.tar.gz`, as pinned by torchaudio
/// (`_CHECKSUMS` in torchaudio/datasets/speechcommands.py, releases since the switch
/// from MD5 6b74f3901214cb2c2934e98196829835) and TensorFlow Datasets
/// (tensorflow_datasets/datasets/speech_commands/checksums.tsv); ESPnet's
/// egs2/speechcommands recipe pins the same size.
const ARCHIVE_SHA256: &str = "af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58";
const ARCHIVE_SIZE: u64 = 2_428_923_189;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: DataCmd,
}

#[derive(clap::Subcommand)]
pub enum DataCmd {
    /// Spoken words from the installed TTS engines (espeak-ng, flite, festival, GnuSpeech) as
    /// 1 s, 16 kHz clips in the Speech Commands layout: <out>/<word>/<voice>_nohash_<n>.wav.
    Synth(SynthArgs),
    /// Download the official Speech Commands v0.02 archive with curl, verify its
    /// SHA-256 and extract it with tar.
    Fetch(FetchArgs),
    /// Running speech of the training speakers cut into 1 s clips where a model comes
    /// closest to reporting a word (and at random), for `train --extra` as `_unknown_`:
    /// <out>/running_speech/neg<seed>x<n>_nohash_0.wav.
    Negatives(NegativesArgs),
}

#[derive(clap::Args)]
pub struct NegativesArgs {
    /// The model whose near-firings are wanted (default: the bundled model).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Speech Commands folder; its training speakers (the model's split) voice the talk.
    #[arg(long, env = "SPIKEWORD_DATA")]
    data: PathBuf,
    /// Output folder (created).
    #[arg(long)]
    out: PathBuf,
    /// Minutes of running speech to cut from.
    #[arg(long, default_value_t = 30.0, value_parser = super::values::stream_minutes)]
    minutes: f32,
    /// Hard negatives: windows whose highest word probability peaks at or above this.
    #[arg(long, default_value_t = MiningOptions::default().level, value_parser = super::values::probability)]
    level: f32,
    /// Clips at random per minute.
    #[arg(long, default_value_t = MiningOptions::default().random_per_minute)]
    random: usize,
    #[arg(long, value_delimiter = ',', default_value = "espeak,flite,festival")]
    engines: Vec<String>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(clap::Args)]
pub struct SynthArgs {
    /// Comma-separated words (default: the 10 commands and 10 auxiliary words).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "yes,no,up,down,left,right,on,off,stop,go,bed,bird,cat,dog,happy,house,marvin,sheila,tree,wow"
    )]
    words: Vec<String>,
    /// Output folder (created); existing clips with the same names are overwritten.
    #[arg(long)]
    out: PathBuf,
    /// Clips per word per engine.
    #[arg(long, default_value_t = 6, value_parser = super::values::count)]
    variants: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Comma-separated engines; missing ones are skipped with a warning
    /// (install them with scripts/tts_packages.txt).
    #[arg(long, value_delimiter = ',', default_value = "espeak,flite,festival")]
    engines: Vec<String>,
    /// The report as one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct FetchArgs {
    /// Folder to extract into (created); the archive is downloaded there first.
    #[arg(long)]
    out: PathBuf,
    /// Where to download from (any URL curl takes, file:// included).
    #[arg(long, default_value = ARCHIVE_URL)]
    url: String,
    /// Expected SHA-256 (hex). Defaults to the pinned checksum of the official
    /// speech_commands_v0.02.tar.gz; an archive with another name has none and needs
    /// this flag (the computed SHA-256 and size are printed either way).
    #[arg(long)]
    sha256: Option<String>,
    /// Keep the .tar.gz after extracting it.
    #[arg(long)]
    keep_archive: bool,
}

pub fn run(a: Args) -> Result<ExitCode> {
    match a.cmd {
        DataCmd::Synth(s) => synth(s),
        DataCmd::Fetch(f) => fetch(f),
        DataCmd::Negatives(n) => negatives(n),
    }
}

fn negatives(a: NegativesArgs) -> Result<ExitCode> {
    let path = a
        .model
        .clone()
        .unwrap_or_else(spikeword::model::default_model_path);
    let model = Model::load(&path).with_context(|| format!("model {}", path.display()))?;
    let ds = Dataset::scan(&a.data, &model_split_rule(&model)?)?;
    let opts = MiningOptions {
        minutes: a.minutes as f64,
        engines: a.engines,
        level: a.level,
        random_per_minute: a.random,
        seed: a.seed,
        ..MiningOptions::default()
    };
    let (negatives, report) = mine(&model, &ds, &opts)?;
    let dir = a.out.join("running_speech");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let rate = model.config.features.sample_rate;
    for (i, n) in negatives.iter().enumerate() {
        // One "speaker" per clip: the windows come from many voices.
        let p = dir.join(format!("neg{}x{i:05}_nohash_0.wav", a.seed));
        write_pcm16(&p, &n.window, rate).with_context(|| format!("writing {}", p.display()))?;
    }
    println!(
        "{} clips in {} from {:.0} min of running speech ({} other-word clips, {} sentences): {} hard (peak >= {}), {} at random",
        negatives.len(),
        dir.display(),
        report.stream_minutes,
        report.other_word_clips,
        report.sentences,
        report.hard,
        report.level,
        report.random
    );
    if !report.missing_engines.is_empty() {
        println!("missing engines: {}", report.missing_engines.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

fn synth(a: SynthArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let opts = SynthOptions {
        words: a.words,
        out: a.out.clone(),
        variants: a.variants,
        seed: a.seed,
        engines: a.engines,
    };
    let report = synthesize(&opts)?;
    let secs = started.elapsed().as_secs_f64();
    if a.json {
        let mut v = serde_json::to_value(&report)?;
        v["total"] = report.total().into();
        v["wall_time_s"] = ((secs * 10.0).round() / 10.0).into();
        println!("{v}");
    } else {
        for (engine, n) in &report.clips {
            let voices = report.speakers.get(engine).map(Vec::len).unwrap_or(0);
            println!("{engine:<9} {n:>5} clips, {voices} voices");
        }
        if !report.missing.is_empty() {
            println!("missing   {}", report.missing.join(", "));
        }
        println!(
            "total     {:>5} clips in {} ({} failed renders skipped), {secs:.1} s",
            report.total(),
            a.out.display(),
            report.failed
        );
    }
    Ok(if report.total() > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn fetch(a: FetchArgs) -> Result<ExitCode> {
    let name = archive_name(&a.url);
    let expected = expected_sha256(a.sha256.as_deref(), &name)?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let archive = a.out.join(&name);
    if archive.is_file() {
        eprintln!("{} already there, not downloading again", archive.display());
    } else {
        download(&a.url, &a.out.join(format!("{name}.part")), &archive)?;
    }
    verify_archive(&archive, &name, expected)?;
    eprintln!("checksum OK, extracting into {}", a.out.display());
    extract(&archive, &a.out)?;
    if !a.keep_archive {
        std::fs::remove_file(&archive)?;
    }
    println!("extracted into {}", a.out.display());
    Ok(ExitCode::SUCCESS)
}

/// The file name at the end of `url`, or a safe default when it has none (or an odd one).
fn archive_name(url: &str) -> String {
    url.rsplit('/')
        .next()
        .map(|s| s.split(['?', '#']).next().unwrap_or(s))
        .filter(|s| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        })
        .unwrap_or("archive.tar.gz")
        .to_string()
}

/// The checksum to hold the download to: `--sha256`, else the pinned one for the
/// official archive, else none.
fn expected_sha256(given: Option<&str>, name: &str) -> Result<Option<String>> {
    Ok(match given {
        Some(h) => {
            let h = h.trim().to_ascii_lowercase();
            if h.len() != 64 || !h.chars().all(|c| c.is_ascii_hexdigit()) {
                bail!("--sha256 must be 64 hex digits");
            }
            Some(h)
        }
        None if name == ARCHIVE_NAME => Some(ARCHIVE_SHA256.to_string()),
        None => None,
    })
}

/// Downloads `url` with curl into `part`, renamed to `archive` once complete.
fn download(url: &str, part: &Path, archive: &Path) -> Result<()> {
    eprintln!("downloading {url} to {}", archive.display());
    let interactive = std::io::stderr().is_terminal();
    let mut cmd = Command::new("curl");
    cmd.args(["-fL", "--retry", "3"]);
    // A progress bar for people; for logs, curl's last error line goes into ours
    // (it prints one per try).
    if interactive {
        cmd.arg("--progress-bar").stderr(Stdio::inherit());
    } else {
        cmd.arg("-sS").stderr(Stdio::piped());
    }
    cmd.arg("-o")
        .arg(part)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let out = cmd.output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            anyhow::anyhow!("`curl` not found: install curl (apt-get install curl)")
        } else {
            anyhow::anyhow!("running curl: {e}")
        }
    })?;
    if !out.status.success() {
        let _ = std::fs::remove_file(part);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let why = stderr
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .map(|l| format!(" ({l})"))
            .unwrap_or_default();
        match out.status.code() {
            Some(c) => bail!("download of {url} failed: curl exited with code {c}{why}"),
            None => bail!("download of {url} failed: curl was killed"),
        }
    }
    std::fs::rename(part, archive)?;
    Ok(())
}

/// Prints the archive's SHA-256 and size, and fails (deleting a corrupt archive) unless
/// it matches `expected`.
fn verify_archive(archive: &Path, name: &str, expected: Option<String>) -> Result<()> {
    eprintln!("checking SHA-256 of {}", archive.display());
    let (digest, size) =
        sha256_file(archive).with_context(|| format!("reading {}", archive.display()))?;
    println!("sha256 {digest}  size {size}  {}", archive.display());
    let Some(expected) = expected else {
        bail!(
            "no known checksum for {name}: check the value above and rerun with --sha256 {digest}"
        );
    };
    if digest != expected {
        let _ = std::fs::remove_file(archive);
        let hint = if name == ARCHIVE_NAME && size != ARCHIVE_SIZE {
            format!(" (size {size}, expected {ARCHIVE_SIZE})")
        } else {
            String::new()
        };
        bail!(
            "checksum mismatch for {name}: expected {expected}, got {digest}{hint}; the file was deleted"
        );
    }
    Ok(())
}

/// Unpacks the .tar.gz into `out` with tar.
fn extract(archive: &Path, out: &Path) -> Result<()> {
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(archive)
        .arg("-C")
        .arg(out)
        .status()
        .map_err(|e| anyhow::anyhow!("running tar: {e}"))?;
    if !status.success() {
        bail!(
            "extracting {} failed: tar exited with {status}",
            archive.display()
        );
    }
    Ok(())
}

/// Lowercase hex SHA-256 and byte size of a file, read in 1 MiB chunks.
pub fn sha256_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut f = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((hex, size))
}
