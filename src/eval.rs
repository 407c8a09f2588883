//! Accuracy, confusion and activity (firing rates, synaptic operations) of a model on
//! labelled clips, using the same frame-by-frame engine as the apps.

use serde::Serialize;

use crate::data::{LabeledAudio, SplitRule};
use crate::features::with_mel_frame;
use crate::model::{ClipOutput, Model};
use crate::snn::{FixedEnsemble, FixedStats, LeakRounding};
use crate::util::{argmax, parallel_map};

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
    /// Present when the clips ran on the integer engine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub integer: Option<IntegerReport>,
}

/// How the integer engine (`snn::fixed`) did beside the float one on the same clips.
#[derive(Debug, Clone, Serialize)]
pub struct IntegerReport {
    pub weight_bits: Option<u32>,
    pub input_bits: u32,
    pub input_range: f32,
    pub leak_bits: u32,
    pub leak_rounding: LeakRounding,
    pub frac_bits: u32,
    /// Bits of a signed register that held every membrane: the widest, then per spiking
    /// layer and, last, the readout.
    pub membrane_bits: u32,
    pub membrane_bits_per_layer: Vec<u32>,
    /// Share of the rounded input values clipped to the input range.
    pub clipped_inputs: f64,
    /// The float engine's accuracy on the same clips, and the share of clips where both
    /// engines chose the same label.
    pub float_accuracy: f64,
    pub same_decisions: f64,
}

/// The Wilson score 95 % interval of a proportion `correct / n` (sound at small n and near
/// 0 or 1, where the normal approximation is not).
pub fn wilson_interval(correct: usize, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (z, n) = (1.959_964f64, n as f64);
    let p = correct as f64 / n;
    let centre = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
    let half = z / (1.0 + z * z / n) * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// `correct / n` as a percentage with its count and 95 % interval, for reports:
/// `"88.40 %  (2209/2500, 95 % interval 87.0–89.6 %)"`.
pub fn accuracy_with_interval(correct: usize, n: usize) -> String {
    let (lo, hi) = wilson_interval(correct, n);
    format!(
        "{:6.2} %  ({correct}/{n}, 95 % interval {:.1}–{:.1} %)",
        100.0 * correct as f64 / n.max(1) as f64,
        100.0 * lo,
        100.0 * hi
    )
}

/// Classifies every clip; returns the report and the per-clip outputs.
pub fn evaluate(model: &Model, data: &[LabeledAudio]) -> (EvalReport, Vec<ClipOutput>) {
    let outs = parallel_map(data, |a| {
        with_mel_frame(&model.config.features, |mf| model.classify(mf, &a.samples))
    });
    (report(model, data, &outs), outs)
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
        integer: None,
    }
}

/// `evaluate` on the integer engine (`engine` from `Model::integer_engine`), side by side
/// with the float engine on the same clips: the integer report (with its comparison) and
/// the float one, each clip decoded once.
pub fn evaluate_integer(
    model: &Model,
    engine: &FixedEnsemble,
    data: &[LabeledAudio],
) -> (EvalReport, EvalReport) {
    let spec = engine.spec();
    let both = parallel_map(data, |a| {
        with_mel_frame(&model.config.features, |mf| {
            let (fixed, stats) = model.classify_fixed(engine, mf, &a.samples);
            (fixed, stats, model.classify(mf, &a.samples))
        })
    });
    let mut stats = FixedStats::default();
    let mut same = 0usize;
    for (fixed, s, float) in &both {
        stats.merge(s);
        same += (argmax(&fixed.logits) == argmax(&float.logits)) as usize;
    }
    let (outs, float_outs): (Vec<ClipOutput>, Vec<ClipOutput>) =
        both.into_iter().map(|(o, _, f)| (o, f)).unzip();
    let float = report(model, data, &float_outs);
    let mut rep = report(model, data, &outs);
    rep.integer = Some(IntegerReport {
        weight_bits: model.weight_bits(),
        input_bits: spec.input_bits,
        input_range: spec.input_range,
        leak_bits: spec.leak_bits,
        leak_rounding: spec.leak_rounding,
        frac_bits: spec.frac_bits,
        membrane_bits: stats.membrane_bits().into_iter().max().unwrap_or(0),
        membrane_bits_per_layer: stats.membrane_bits(),
        clipped_inputs: stats.clipped_inputs as f64 / stats.inputs.max(1) as f64,
        float_accuracy: float.accuracy,
        same_decisions: same as f64 / data.len().max(1) as f64,
    });
    (rep, float)
}

impl EvalReport {
    /// Human-readable summary with the confusion matrix.
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let correct: usize = self.per_class.iter().map(|c| c.correct).sum();
        let (lo, hi) = wilson_interval(correct, self.n);
        let _ = writeln!(
            s,
            "accuracy {:.2} % on {} clips (95 % interval {:.1}–{:.1} %)",
            100.0 * self.accuracy,
            self.n,
            100.0 * lo,
            100.0 * hi
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
        if let Some(i) = &self.integer {
            let _ = writeln!(s, "{}", i.to_text());
        }
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

/// `layers 23 / 16 / 16, readout 16` from the spiking layers' widths and the readout's last.
fn per_layer_bits(bits: &[u32]) -> String {
    let Some((readout, layers)) = bits.split_last() else {
        return String::new();
    };
    let layers: Vec<String> = layers.iter().map(u32::to_string).collect();
    format!("layers {}, readout {readout}", layers.join(" / "))
}

impl IntegerReport {
    /// Two lines: the formats and registers, then the float engine beside it.
    fn to_text(&self) -> String {
        let weights = match self.weight_bits {
            Some(b) => format!("{b}-bit weights"),
            None => "integer weights".into(),
        };
        format!(
            "integer arithmetic: {weights}, {}-bit inputs (±{} sd, {:.3} % clipped), {}-bit leaks {}, membranes within {} bits ({} fraction bits; {})\n\
             float engine on the same clips: {:.2} %, the same label on {:.2} % of them",
            self.input_bits,
            self.input_range,
            100.0 * self.clipped_inputs,
            self.leak_bits,
            self.leak_rounding,
            self.membrane_bits,
            self.frac_bits,
            per_layer_bits(&self.membrane_bits_per_layer),
            100.0 * self.float_accuracy,
            100.0 * self.same_decisions,
        )
    }
}

/// The speaker-split rule `model` was trained with, as recorded in its file: the test and
/// validation speakers are only known through it. A model without one (e.g. an edited
/// file) is an error rather than a guess; `--split-rule` then says which to use.
pub fn model_split_rule(model: &Model) -> anyhow::Result<SplitRule> {
    let rec = &model.training["split_rule"];
    serde_json::from_value(rec.clone()).map_err(|_| {
        anyhow::anyhow!(
            "the model records no speaker split rule ({rec}): pass --split-rule official|salted"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::{accuracy_with_interval, wilson_interval};

    #[test]
    fn accuracy_reads_with_its_count_and_interval() {
        assert_eq!(
            accuracy_with_interval(247, 285),
            " 86.67 %  (247/285, 95 % interval 82.2–90.1 %)"
        );
    }

    #[test]
    fn wilson_interval_matches_published_values() {
        // 247/285 (the bundled model's test split): 82.2–90.1 %.
        let (lo, hi) = wilson_interval(247, 285);
        assert!(
            (lo - 0.8223).abs() < 5e-4 && (hi - 0.9013).abs() < 5e-4,
            "{lo} {hi}"
        );
        // Newcombe (1998), 81/263: 0.2553–0.3662.
        let (lo, hi) = wilson_interval(81, 263);
        assert!(
            (lo - 0.2553).abs() < 5e-4 && (hi - 0.3662).abs() < 5e-4,
            "{lo} {hi}"
        );
        assert_eq!(wilson_interval(0, 0), (0.0, 1.0));
        let (lo, hi) = wilson_interval(10, 10);
        assert!(hi > 0.9999 && lo > 0.70 && lo < 0.74);
    }
}
