//! Pictures (plotters, bitmap backend, font embedded so no system fonts are needed):
//! waveform / log-mel / spike raster stacks, confusion matrices, detection timelines.

use std::path::Path;
use std::sync::Once;

use anyhow::{Context, Result, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::eval::EvalReport;

static FONT: Once = Once::new();

fn init_font() {
    FONT.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, bytes);
    });
}

fn err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("drawing: {e}")
}

type Canvas<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// Draws on an in-memory canvas of `size`, then writes it as a PNG atomically, so a failed
/// drawing never leaves half a picture and a path that cannot be written is named plainly.
fn save_png(path: &Path, size: (u32, u32), draw: impl FnOnce(&Canvas) -> Result<()>) -> Result<()> {
    init_font();
    let mut rgb = vec![0u8; size.0 as usize * size.1 as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        draw(&root)?;
        root.present().map_err(err)?;
    }
    let mut bytes = Vec::new();
    let mut enc = png::Encoder::new(&mut bytes, size.0, size.1);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    // Per-row filter choice: charts have long flat runs; 40 % smaller than one fixed filter.
    enc.set_adaptive_filter(png::AdaptiveFilterType::Adaptive);
    enc.write_header()?.write_image_data(&rgb)?;
    crate::util::atomic_write(path, &bytes)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Viridis-like colour ramp for v in [0, 1].
fn ramp(v: f32) -> RGBColor {
    let v = v.clamp(0.0, 1.0);
    let stops = [
        (68, 1, 84),
        (59, 82, 139),
        (33, 145, 140),
        (94, 201, 98),
        (253, 231, 37),
    ];
    let x = v * (stops.len() - 1) as f32;
    let i = (x as usize).min(stops.len() - 2);
    let f = x - i as f32;
    let l = |a: u8, b: u8| (a as f32 + (b as f32 - a as f32) * f) as u8;
    RGBColor(
        l(stops[i].0, stops[i + 1].0),
        l(stops[i].1, stops[i + 1].1),
        l(stops[i].2, stops[i + 1].2),
    )
}

/// A word event to draw on a timeline.
pub struct Mark {
    pub start: f32,
    pub end: f32,
    pub label: String,
}

/// What `inspect` and `detect --png` draw, time-aligned: waveform, log-mel (frames ×
/// bands), input spike raster (frames × channels), optional word marks.
pub struct Figure<'a> {
    pub title: String,
    pub samples: &'a [f32],
    pub sample_rate: u32,
    pub logmel: &'a [f32],
    pub n_mels: usize,
    pub frame_rate: f32,
    pub raster: &'a [f32],
    pub raster_channels: usize,
    pub raster_label: String,
    pub marks: Vec<Mark>,
}

pub fn figure_png(fig: &Figure, path: &Path) -> Result<()> {
    let duration = fig.samples.len() as f32 / fig.sample_rate as f32;
    let width = (900.0 + duration.min(300.0) * 40.0).min(4000.0) as u32;
    save_png(path, (width, 900), |root| {
        let root = root.titled(&fig.title, ("sans-serif", 22)).map_err(err)?;
        let panels = root.split_evenly((3, 1));
        waveform_panel(&panels[0], fig, duration, width as usize)?;
        heatmap(
            &panels[1],
            "log-mel spectrogram",
            fig.logmel,
            fig.n_mels,
            fig.frame_rate,
            "mel band",
            true,
        )?;
        raster_panel(&panels[2], fig, duration)
    })
}

/// The waveform as min/max per pixel column, with the word marks over it.
fn waveform_panel(
    area: &DrawingArea<BitMapBackend, plotters::coord::Shift>,
    fig: &Figure,
    duration: f32,
    cols: usize,
) -> Result<()> {
    let mut c = ChartBuilder::on(area)
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(60)
        .caption("waveform", ("sans-serif", 16))
        .build_cartesian_2d(0f32..duration.max(1e-3), -1f32..1f32)
        .map_err(err)?;
    c.configure_mesh()
        .x_desc("time (s)")
        .y_desc("amplitude")
        .draw()
        .map_err(err)?;
    let per = (fig.samples.len() / cols).max(1);
    let pts = fig.samples.chunks(per).enumerate().flat_map(|(i, ch)| {
        let t = (i * per) as f32 / fig.sample_rate as f32;
        let lo = ch.iter().cloned().fold(f32::INFINITY, f32::min);
        let hi = ch.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        [(t, lo), (t, hi)]
    });
    c.draw_series(LineSeries::new(pts, &BLUE)).map_err(err)?;
    for m in &fig.marks {
        c.draw_series(std::iter::once(Rectangle::new(
            [(m.start, -1.0), (m.end, 1.0)],
            RED.mix(0.15).filled(),
        )))
        .map_err(err)?;
        c.draw_series(std::iter::once(Text::new(
            m.label.clone(),
            (m.start, 0.85),
            ("sans-serif", 16).into_font().color(&RED),
        )))
        .map_err(err)?;
    }
    Ok(())
}

/// The input spikes as one dot per spike, on the waveform's time axis.
fn raster_panel(
    area: &DrawingArea<BitMapBackend, plotters::coord::Shift>,
    fig: &Figure,
    duration: f32,
) -> Result<()> {
    let n_frames = fig.raster.len() / fig.raster_channels.max(1);
    let dur = n_frames as f32 / fig.frame_rate;
    let mut c = ChartBuilder::on(area)
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(60)
        .caption(&fig.raster_label, ("sans-serif", 16))
        .build_cartesian_2d(
            0f32..dur.max(duration).max(1e-3),
            0f32..fig.raster_channels as f32,
        )
        .map_err(err)?;
    c.configure_mesh()
        .x_desc("time (s)")
        .y_desc("channel")
        .draw()
        .map_err(err)?;
    let dots = fig
        .raster
        .chunks(fig.raster_channels.max(1))
        .enumerate()
        .flat_map(|(t, f)| {
            f.iter()
                .enumerate()
                .filter(|(_, v)| **v != 0.0)
                .map(move |(ch, _)| {
                    Circle::new(
                        (t as f32 / fig.frame_rate, ch as f32 + 0.5),
                        1,
                        BLACK.filled(),
                    )
                })
                .collect::<Vec<_>>()
        });
    c.draw_series(dots).map_err(err)?;
    Ok(())
}

fn heatmap(
    area: &DrawingArea<BitMapBackend, plotters::coord::Shift>,
    caption: &str,
    data: &[f32],
    rows: usize,
    frame_rate: f32,
    ylabel: &str,
    autoscale: bool,
) -> Result<()> {
    let n = data.len() / rows.max(1);
    let dur = n as f32 / frame_rate;
    let (lo, hi) = if autoscale {
        let mut v: Vec<f32> = data.iter().cloned().filter(|x| x.is_finite()).collect();
        v.sort_by(f32::total_cmp);
        if v.is_empty() {
            (0.0, 1.0)
        } else {
            (v[v.len() / 100], v[v.len() - 1 - v.len() / 1000])
        }
    } else {
        (0.0, 1.0)
    };
    let mut c = ChartBuilder::on(area)
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(60)
        .caption(caption, ("sans-serif", 16))
        .build_cartesian_2d(0f32..dur.max(1e-3), 0f32..rows as f32)
        .map_err(err)?;
    c.configure_mesh()
        .x_desc("time (s)")
        .y_desc(ylabel)
        .disable_mesh()
        .draw()
        .map_err(err)?;
    let dt = 1.0 / frame_rate;
    c.draw_series(data.chunks(rows).enumerate().flat_map(|(t, f)| {
        f.iter()
            .enumerate()
            .map(move |(b, v)| {
                let x = t as f32 * dt;
                Rectangle::new(
                    [(x, b as f32), (x + dt, b as f32 + 1.0)],
                    ramp((v - lo) / (hi - lo).max(1e-6)).filled(),
                )
            })
            .collect::<Vec<_>>()
    }))
    .map_err(err)?;
    Ok(())
}

/// Confusion matrix with row-normalised colours and counts.
pub fn confusion_png(rep: &EvalReport, path: &Path) -> Result<()> {
    save_png(path, (900, 850), |root| draw_confusion(root, rep))
}

fn draw_confusion(root: &Canvas, rep: &EvalReport) -> Result<()> {
    let n = rep.labels.len();
    let mut c = ChartBuilder::on(root)
        .margin(20)
        .caption(
            format!(
                "confusion, accuracy {:.2} % (n = {})",
                100.0 * rep.accuracy,
                rep.n
            ),
            ("sans-serif", 22),
        )
        .x_label_area_size(90)
        .y_label_area_size(90)
        .build_cartesian_2d(0..n, 0..n)
        .map_err(err)?;
    let labels = rep.labels.clone();
    let l2 = labels.clone();
    c.configure_mesh()
        .disable_mesh()
        .x_labels(n)
        .y_labels(n)
        .x_label_formatter(&|i| labels.get(*i).cloned().unwrap_or_default())
        .y_label_formatter(&|i| {
            l2.get(n.saturating_sub(1 + *i))
                .cloned()
                .unwrap_or_default()
        })
        .x_desc("predicted")
        .y_desc("true")
        .draw()
        .map_err(err)?;
    for (i, row) in rep.confusion.iter().enumerate() {
        let tot = row.iter().sum::<u64>().max(1) as f32;
        for (j, &v) in row.iter().enumerate() {
            let y = n - 1 - i;
            c.draw_series(std::iter::once(Rectangle::new(
                [(j, y), (j + 1, y + 1)],
                ramp(v as f32 / tot).filled(),
            )))
            .map_err(err)?;
            if v > 0 {
                let col = if v as f32 / tot > 0.5 { BLACK } else { WHITE };
                c.draw_series(std::iter::once(Text::new(
                    v.to_string(),
                    (j, y + 1),
                    ("sans-serif", 14).into_font().color(&col),
                )))
                .map_err(err)?;
            }
        }
    }
    Ok(())
}

/// A named DET curve: (false alarms per hour, miss rate %, threshold) per point.
pub type DetCurve = (String, Vec<(f64, f64, f32)>);

/// One detector's DET curve: miss rate against false alarms per hour (log scale), with
/// the operating points labelled by threshold. Points with no false alarm are drawn at
/// `floor` (half of one false alarm in the measured time).
pub fn det_png(title: &str, curves: &[DetCurve], floor: f64, path: &Path) -> Result<()> {
    save_png(path, (900, 650), |root| {
        draw_det(root, title, curves, floor)
    })
}

fn draw_det(root: &Canvas, title: &str, curves: &[DetCurve], floor: f64) -> Result<()> {
    let max_fa = curves
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.0))
        .fold(10.0f64, f64::max)
        * 1.5;
    let mut c = ChartBuilder::on(root)
        .margin(20)
        .caption(title, ("sans-serif", 22))
        .x_label_area_size(50)
        .y_label_area_size(60)
        .build_cartesian_2d((floor * 0.8..max_fa).log_scale(), 0.0f64..100.0)
        .map_err(err)?;
    c.configure_mesh()
        .x_desc("false alarms per hour of running speech (log)")
        .y_desc("command words missed (%)")
        .draw()
        .map_err(err)?;
    let colours = [BLUE, RED, GREEN, MAGENTA, CYAN, BLACK];
    for (k, (name, pts)) in curves.iter().enumerate() {
        let col = colours[k % colours.len()];
        let xy: Vec<(f64, f64)> = pts.iter().map(|p| (p.0.max(floor), p.1)).collect();
        c.draw_series(LineSeries::new(xy.clone(), col.stroke_width(2)))
            .map_err(err)?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], col));
        c.draw_series(xy.iter().map(|&p| Circle::new(p, 3, col.filled())))
            .map_err(err)?;
        for (p, (x, y)) in pts.iter().zip(&xy) {
            c.draw_series(std::iter::once(Text::new(
                format!("{:.2}", p.2),
                (*x, *y + 2.0),
                ("sans-serif", 12).into_font().color(&col),
            )))
            .map_err(err)?;
        }
    }
    c.configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    Ok(())
}
