//! Accuracy, confusion and activity (firing rates, synaptic operations) of a model on
//! labelled clips, using the same frame-by-frame engine as the apps.

use std::path::Path;

use serde::Serialize;

use crate::audio::{fit_length, load_wav};
use crate::config::SILENCE;
use crate::features::with_mel_frame;
use crate::model::{ClipOutput, Model};
use crate::train::data::{Dataset, Split, label_index};

/// A clip in memory with its class index.
#[derive(Debug, Clone)]
pub struct LabeledAudio {
    pub name: String,
    pub samples: Vec<f32>,
    pub label: usize,
}

/// Loads the clips of `split` (all when `None`) under a Speech Commands folder, labelled for
/// `labels`: other words become `_unknown_`, 1 s crops of background noise `_silence_`.
/// Unreadable files are skipped and counted.
pub fn load_labeled(
    ds: &Dataset,
    split: Option<Split>,
    labels: &[String],
    rate: u32,
) -> (Vec<LabeledAudio>, Vec<(String, String)>) {
    let len = rate as usize;
    let wanted: Vec<(&Path, usize)> = ds
        .clips
        .iter()
        .filter(|c| split.is_none_or(|s| c.split == s))
        .filter_map(|c| label_index(labels, &c.word).map(|l| (c.path.as_path(), l)))
        .collect();
    let loaded = parallel_map(&wanted, |(p, l)| {
        load_wav(p, rate).map(|x| LabeledAudio {
            name: p.display().to_string(),
            samples: fit_length(&x, len),
            label: *l,
        })
    });
    let mut out = Vec::new();
    let mut failed = Vec::new();
    for ((p, _), r) in wanted.iter().zip(loaded) {
        match r {
            Ok(a) => out.push(a),
            Err(e) => failed.push((p.display().to_string(), e.to_string())),
        }
    }
    if let Some(si) = labels.iter().position(|l| l == SILENCE) {
        let noise: Vec<_> = match split {
            Some(s) => ds.noise_for(s),
            None => ds.noise.iter().map(|(p, _)| p.clone()).collect(),
        };
        for p in noise {
            match load_wav(&p, rate) {
                Ok(x) => {
                    // Consecutive 1 s crops (the shared folder's files are 1 s already).
                    for (k, c) in x.chunks(len).enumerate() {
                        if c.len() * 2 >= len {
                            out.push(LabeledAudio {
                                name: format!("{}#{k}", p.display()),
                                samples: fit_length(c, len),
                                label: si,
                            });
                        }
                    }
                }
                Err(e) => failed.push((p.display().to_string(), e.to_string())),
            }
        }
    }
    (out, failed)
}

/// Maps `f` over `items` on all cores, keeping order.
pub fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len().max(1));
    let chunk = items.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|c| s.spawn(|| c.iter().map(&f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("worker panicked"))
            .collect()
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct ClassStats {
    pub label: String,
    pub n: usize,
    pub correct: usize,
    pub accuracy: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub accuracy: f64,
    pub n: usize,
    pub labels: Vec<String>,
    pub per_class: Vec<ClassStats>,
    /// confusion[true][predicted]
    pub confusion: Vec<Vec<u64>>,
    /// Mean firing rate over all spiking neurons, Hz.
    pub firing_rate_hz: f64,
    pub per_layer_hz: Vec<f64>,
    /// Input spikes per second of audio (0 for current injection).
    pub input_spikes_per_s: f64,
    /// Synaptic operations (weight additions performed, event-driven) per second of audio.
    pub synops_per_s: f64,
    /// The same network run densely, for comparison.
    pub dense_macs_per_s: f64,
}

/// Classifies every clip; returns the report and the per-clip outputs.
pub fn evaluate(model: &Model, data: &[LabeledAudio]) -> (EvalReport, Vec<ClipOutput>) {
    let outs = parallel_map(data, |a| {
        with_mel_frame(&model.config.features, |mf| model.classify(mf, &a.samples))
    });
    (report(model, data, &outs), outs)
}

pub fn argmax(x: &[f32]) -> usize {
    x.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i)
}

fn report(model: &Model, data: &[LabeledAudio], outs: &[ClipOutput]) -> EvalReport {
    let labels = model.labels().to_vec();
    let n_cls = labels.len();
    let mut confusion = vec![vec![0u64; n_cls]; n_cls];
    let neurons_per_layer = model.net.neurons_per_layer();
    let mut spikes = vec![0u64; neurons_per_layer.len()];
    let (mut frames, mut synops, mut input_spikes) = (0u64, 0u64, 0u64);
    for (a, o) in data.iter().zip(outs) {
        confusion[a.label][argmax(&o.logits)] += 1;
        for (s, c) in spikes.iter_mut().zip(&o.spike_counts) {
            *s += c;
        }
        frames += o.frames as u64;
        synops += o.synops;
        input_spikes += o.input_spikes;
    }
    let correct: u64 = (0..n_cls).map(|i| confusion[i][i]).sum();
    let per_class = (0..n_cls)
        .map(|i| {
            let n = confusion[i].iter().sum::<u64>() as usize;
            let c = confusion[i][i] as usize;
            ClassStats {
                label: labels[i].clone(),
                n,
                correct: c,
                accuracy: if n > 0 { c as f64 / n as f64 } else { 0.0 },
            }
        })
        .collect();
    let seconds = frames as f64 / model.config.features.frame_rate() as f64;
    let secs = seconds.max(1e-9);
    // Rates over all members' neurons; operations of all members together.
    let per_layer_hz: Vec<f64> = neurons_per_layer
        .iter()
        .zip(&spikes)
        .map(|(&c, &s)| s as f64 / (c as f64 * secs))
        .collect();
    let neurons: usize = neurons_per_layer.iter().sum();
    let dense_per_frame: usize = model
        .net
        .members
        .iter()
        .map(|m| {
            m.layers
                .iter()
                .map(|l| l.c_in * l.c_out * l.kernel)
                .sum::<usize>()
                + m.readout.c_in * m.readout.n_classes
        })
        .sum();
    EvalReport {
        accuracy: if data.is_empty() {
            0.0
        } else {
            correct as f64 / data.len() as f64
        },
        n: data.len(),
        labels,
        per_class,
        confusion,
        firing_rate_hz: spikes.iter().sum::<u64>() as f64 / (neurons as f64 * secs),
        per_layer_hz,
        input_spikes_per_s: input_spikes as f64 / secs,
        synops_per_s: synops as f64 / secs,
        dense_macs_per_s: dense_per_frame as f64 * model.config.features.frame_rate() as f64,
    }
}

impl EvalReport {
    /// Human-readable summary with the confusion matrix.
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "accuracy {:.2} % on {} clips",
            100.0 * self.accuracy,
            self.n
        );
        let _ = writeln!(
            s,
            "firing rate {:.2} Hz mean (layers: {})",
            self.firing_rate_hz,
            self.per_layer_hz
                .iter()
                .map(|h| format!("{h:.2}"))
                .collect::<Vec<_>>()
                .join(" / ")
        );
        let _ = writeln!(
            s,
            "synaptic ops {:.0}/s of audio event-driven vs {:.0} MAC/s dense ({:.1}x fewer); input spikes {:.0}/s",
            self.synops_per_s,
            self.dense_macs_per_s,
            self.dense_macs_per_s / self.synops_per_s.max(1.0),
            self.input_spikes_per_s
        );
        let _ = writeln!(s, "\nper class:");
        for c in &self.per_class {
            let _ = writeln!(
                s,
                "  {:<10} {:6.2} %  ({}/{})",
                c.label,
                100.0 * c.accuracy,
                c.correct,
                c.n
            );
        }
        let _ = writeln!(s, "\nconfusion (rows: true, columns: predicted):");
        let short: Vec<String> = self
            .labels
            .iter()
            .map(|l| l.trim_matches('_').chars().take(5).collect())
            .collect();
        let _ = write!(s, "{:>8}", "");
        for l in &short {
            let _ = write!(s, "{l:>6}");
        }
        let _ = writeln!(s);
        for (i, row) in self.confusion.iter().enumerate() {
            let _ = write!(s, "{:>8}", short[i]);
            for v in row {
                let _ = write!(s, "{v:>6}");
            }
            let _ = writeln!(s);
        }
        s
    }
}
