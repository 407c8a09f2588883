use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;

use spikeword::audio::live::{LiveSource, Recv, feed_live};
use spikeword::detect::Engine;

use super::classify::Format;
use super::detect::{DetectorArgs, print_event};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    model: Option<PathBuf>,
    /// Feed this WAV file (`-`: a WAV stream on standard input) through the live pipeline
    /// instead of the microphone.
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
    let rate = model.config.features.sample_rate;
    let stop = stop_on_ctrl_c();
    let mut source = match &a.input {
        Some(p) => feed_live(super::recording::open(p, rate)?, a.realtime, stop.clone())?,
        None => super::open_mic(a.device.as_deref(), rate)?,
    };
    let format = if a.json { Format::Json } else { Format::Table };
    let integer = super::integer_engine(&model, a.det.integer)?;
    let mut listener = Listener {
        engine: a.det.engine(&model, integer.as_ref())?,
        out: std::io::stdout().lock(),
        format,
        samples: 0,
        events: 0,
        busy: Duration::ZERO,
    };
    let meter = std::io::stderr().is_terminal() && !a.json;
    let level_meter = meter.then(|| Meter::new(model.labels(), rate));
    if meter {
        eprintln!(
            "listening ({}); Ctrl-C stops",
            a.input
                .as_ref()
                .map_or("microphone".to_string(), |p| super::recording::name(p))
        );
    }
    let limit = a.seconds.map(|s| s * rate as f64);
    let result = listen_loop(&mut source, &mut listener, level_meter, |samples| {
        stop.load(Ordering::Relaxed) || limit.is_some_and(|l| samples as f64 >= l)
    });
    listener.finish()?;
    if meter {
        eprintln!();
    }
    let secs = listener.samples as f64 / rate as f64;
    eprintln!(
        "summary: {} detections, {secs:.1} s of audio, {} overruns, {:.2} ms CPU per second of audio",
        listener.events,
        source.overruns(),
        1000.0 * listener.busy.as_secs_f64() / secs.max(1e-9)
    );
    result?;
    Ok(ExitCode::SUCCESS)
}

/// A flag that Ctrl-C sets, so that a loop can stop cleanly (it checks every 100 ms; a
/// second Ctrl-C while stopping is ignored).
pub(super) fn stop_on_ctrl_c() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    stop
}

/// Level of a block in dB (floored at -100 dB).
pub(super) fn level_db(buf: &[f32]) -> f32 {
    let rms = (buf.iter().map(|v| v * v).sum::<f32>() / buf.len().max(1) as f32).sqrt();
    20.0 * rms.max(1e-5).log10()
}

/// A 30-character bar for -60..0 dB.
pub(super) fn level_bar(db: f32) -> String {
    let bars = (((db + 60.0) / 60.0).clamp(0.0, 1.0) * 30.0) as usize;
    "#".repeat(bars)
}

/// Feeds the source to the listener until Ctrl-C or `--seconds` (`should_stop`), the end
/// of the input or a closed stdout.
fn listen_loop<W: Write>(
    source: &mut LiveSource,
    listener: &mut Listener<'_, W>,
    mut meter: Option<Meter<'_>>,
    should_stop: impl Fn(usize) -> bool,
) -> Result<()> {
    let mut buf = Vec::with_capacity(1 << 14);
    loop {
        if should_stop(listener.samples) {
            return Ok(());
        }
        buf.clear();
        match source.recv(&mut buf, Duration::from_millis(100)) {
            Ok(Recv::Data(_)) => {}
            Ok(Recv::Timeout) => continue,
            Ok(Recv::End) => return Ok(()),
            Err(e) => return Err(anyhow::anyhow!("{e}")),
        }
        if !listener.push(&buf) {
            return Ok(());
        }
        if let Some(m) = &mut meter {
            m.update(
                &buf,
                listener.samples,
                listener.engine.smoothed(),
                source.overruns(),
            );
        }
    }
}

/// The engine, where its events go, and what it has been fed.
struct Listener<'m, W> {
    engine: Engine<'m>,
    out: W,
    format: Format,
    samples: usize,
    events: usize,
    /// Time spent in the engine (for the CPU share in the summary).
    busy: Duration,
}

impl<W: Write> Listener<'_, W> {
    /// Feeds a block and prints its events at once; false once stdout is closed.
    fn push(&mut self, buf: &[f32]) -> bool {
        let t = Instant::now();
        self.samples += buf.len();
        let mut failed = None;
        let (out, format, events) = (&mut self.out, self.format, &mut self.events);
        self.engine.push(buf, |e| {
            *events += 1;
            if let Err(err) = print_event(out, None, &e, format).and_then(|_| out.flush()) {
                failed = Some(err);
            }
        });
        self.busy += t.elapsed();
        // stdout closed (e.g. piped into `head`): stop quietly.
        failed.is_none_or(|e| e.kind() != std::io::ErrorKind::BrokenPipe)
    }

    /// Prints a word still being held at the end.
    fn finish(&mut self) -> Result<()> {
        if let Some(e) = self.engine.finish() {
            self.events += 1;
            print_event(&mut self.out, None, &e, self.format)?;
        }
        self.out.flush()?;
        Ok(())
    }
}

/// The stderr line showing time, peak level, leading word and overruns, redrawn every
/// 100 ms.
struct Meter<'m> {
    labels: &'m [String],
    rate: u32,
    last: Instant,
    /// Peak level since the last redraw.
    level: f32,
}

impl<'m> Meter<'m> {
    fn new(labels: &'m [String], rate: u32) -> Self {
        Meter {
            labels,
            rate,
            last: Instant::now(),
            level: -90.0,
        }
    }

    fn update(&mut self, buf: &[f32], samples: usize, smoothed: &[f32], overruns: u64) {
        self.level = self.level.max(level_db(buf));
        if self.last.elapsed() <= Duration::from_millis(100) {
            return;
        }
        let (top, pt) = smoothed
            .iter()
            .enumerate()
            .max_by(|x, y| x.1.total_cmp(y.1))
            .map(|(i, v)| (i, *v))
            .unwrap_or((0, 0.0));
        eprint!(
            "\r{:>7.1}s [{:<30}] {:>4.0} dB  {:<10} {:.2}  overruns {}   ",
            samples as f64 / self.rate as f64,
            level_bar(self.level),
            self.level,
            self.labels[top],
            pt,
            overruns
        );
        self.last = Instant::now();
        self.level = -90.0;
    }
}
