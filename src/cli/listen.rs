use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use spikeword::audio::live::{Recv, file_feed};
use spikeword::detect::Engine;

use super::classify::Format;
use super::detect::{DetectorArgs, print_event};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    model: Option<PathBuf>,
    /// Feed this WAV file through the live pipeline instead of the microphone.
    #[arg(long)]
    input: Option<PathBuf>,
    /// With --input: pace the file at real time, as a microphone would deliver it.
    #[arg(long)]
    realtime: bool,
    /// Input device (substring of its name); default: the system default input.
    #[arg(long)]
    device: Option<String>,
    /// List input devices and exit.
    #[arg(long)]
    list_devices: bool,
    /// Stop after this many seconds of audio.
    #[arg(long, value_parser = super::values::seconds)]
    seconds: Option<f64>,
    /// One JSON event per line (flushed at once).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    det: DetectorArgs,
}

#[cfg(feature = "mic")]
fn list_devices() -> Result<()> {
    for d in spikeword::audio::mic::list_devices()? {
        println!("{d}");
    }
    Ok(())
}

#[cfg(not(feature = "mic"))]
fn list_devices() -> Result<()> {
    anyhow::bail!("this build has no microphone support: rebuild with `--features mic`")
}

pub fn run(a: Args) -> Result<ExitCode> {
    if a.list_devices {
        list_devices()?;
        return Ok(ExitCode::SUCCESS);
    }
    let model = super::load_model(&a.model)?;
    let fcfg = model.config.features.clone();
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        // A second Ctrl-C while stopping is ignored; the loop notices within 100 ms.
        let _ = ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst));
    }
    let mut source = match &a.input {
        Some(p) => file_feed(p, fcfg.sample_rate, a.realtime, stop.clone())
            .with_context(|| p.display().to_string())?,
        None => super::open_mic(a.device.as_deref(), fcfg.sample_rate)?,
    };
    let format = if a.json { Format::Json } else { Format::Table };
    let mut engine = Engine::new(&model, a.det.config(&model)?);
    let meter = std::io::stderr().is_terminal() && !a.json;
    let mut out = std::io::stdout().lock();
    let (mut samples, mut events) = (0usize, 0usize);
    let mut busy = Duration::ZERO;
    let mut buf = Vec::with_capacity(1 << 14);
    let mut last_meter = Instant::now();
    let mut level = -90.0f32;
    if meter {
        eprintln!(
            "listening ({}); Ctrl-C stops",
            a.input
                .as_ref()
                .map_or("microphone".to_string(), |p| p.display().to_string())
        );
    }
    let result: Result<()> = loop {
        if stop.load(Ordering::Relaxed)
            || a.seconds
                .is_some_and(|s| samples as f64 >= s * fcfg.sample_rate as f64)
        {
            break Ok(());
        }
        buf.clear();
        match source.recv(&mut buf, Duration::from_millis(100)) {
            Ok(Recv::Data(_)) => {}
            Ok(Recv::Timeout) => continue,
            Ok(Recv::End) => break Ok(()),
            Err(e) => break Err(anyhow::anyhow!("{e}")),
        }
        let t = Instant::now();
        samples += buf.len();
        let mut failed = None;
        engine.push(&buf, |e| {
            events += 1;
            if let Err(err) = print_event(&mut out, &e, format).and_then(|_| out.flush()) {
                failed = Some(err);
            }
        });
        busy += t.elapsed();
        if let Some(e) = failed {
            // stdout closed (e.g. piped into `head`): stop quietly.
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                break Ok(());
            }
        }
        if meter {
            let rms = (buf.iter().map(|v| v * v).sum::<f32>() / buf.len().max(1) as f32).sqrt();
            level = level.max(20.0 * rms.max(1e-5).log10());
            if last_meter.elapsed() > Duration::from_millis(100) {
                let bars = (((level + 60.0) / 60.0).clamp(0.0, 1.0) * 30.0) as usize;
                let p = engine.smoothed();
                let (top, pt) = p
                    .iter()
                    .enumerate()
                    .max_by(|x, y| x.1.total_cmp(y.1))
                    .map(|(i, v)| (i, *v))
                    .unwrap_or((0, 0.0));
                eprint!(
                    "\r{:>7.1}s [{:<30}] {:>4.0} dB  {:<10} {:.2}  overruns {}   ",
                    samples as f64 / fcfg.sample_rate as f64,
                    "#".repeat(bars),
                    level,
                    model.labels()[top],
                    pt,
                    source.overruns()
                );
                last_meter = Instant::now();
                level = -90.0;
            }
        }
    };
    if let Some(e) = engine.finish() {
        events += 1;
        print_event(&mut out, &e, format)?;
    }
    out.flush()?;
    if meter {
        eprintln!();
    }
    let secs = samples as f64 / fcfg.sample_rate as f64;
    eprintln!(
        "summary: {events} detections, {secs:.1} s of audio, {} overruns, {:.2} ms CPU per second of audio",
        source.overruns(),
        1000.0 * busy.as_secs_f64() / secs.max(1e-9)
    );
    result?;
    Ok(ExitCode::SUCCESS)
}
