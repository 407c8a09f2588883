//! Per-frame class scores → word events: moving-average smoothing over a window,
//! per-word thresholds, a sustain time (how long a word must stay above its threshold),
//! peak picking with a hold time, and a refractory period so that one utterance gives one
//! event. `_silence_` and `_unknown_` are never reported.

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::config::{FeatureConfig, SILENCE, UNKNOWN};
use crate::model::softmax_into;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DetectorConfig {
    /// Smoothing window in frames; 0 (the default) takes the model's clip decision window
    /// (98 frames, or its `decision_frames`), which makes the smoothed score the offline
    /// decision on the clip that ends at the current frame.
    pub window: usize,
    /// Probability a word needs to fire.
    pub threshold: f32,
    /// Per-word overrides of `threshold`.
    pub thresholds: HashMap<String, f32>,
    /// Frames a word's smoothed probability must stay at or above its threshold before
    /// it may fire (0 or 1: the first frame above). A word heard alone stays the window's
    /// decision while the window slides over it; in running speech a stretch of other
    /// words that passes for a command tends to pass only for a moment.
    #[serde(default)]
    pub sustain: usize,
    /// Frames without a higher peak before the event is emitted.
    pub hold: usize,
    /// Frames after an event during which no new event starts.
    pub refractory: usize,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            window: 0,
            threshold: 0.5,
            thresholds: HashMap::new(),
            sustain: 0,
            hold: 20,
            refractory: 90,
        }
    }
}

impl DetectorConfig {
    /// Checks the thresholds against the model's labels: a per-word threshold for a word
    /// the model does not report (misspelt, or `_silence_`) would silently do nothing.
    pub fn validate(&self, labels: &[String]) -> Result<(), String> {
        let prob = |p: f32| (0.0..=1.0).contains(&p);
        if !prob(self.threshold) {
            return Err(format!("threshold {} outside 0..1", self.threshold));
        }
        for (w, p) in &self.thresholds {
            if !labels.iter().any(|l| l == w) || w == SILENCE || w == UNKNOWN {
                let words: Vec<&str> = labels
                    .iter()
                    .map(String::as_str)
                    .filter(|l| *l != SILENCE && *l != UNKNOWN)
                    .collect();
                return Err(format!(
                    "no word '{w}' in this model (its words: {})",
                    words.join(" ")
                ));
            }
            if !prob(*p) {
                return Err(format!("threshold {p} for '{w}' outside 0..1"));
            }
        }
        Ok(())
    }
}

/// A detected word.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub word: String,
    /// Seconds from the start of the stream.
    pub start: f64,
    pub end: f64,
    pub score: f32,
    /// Stream time at which the event was decided (its latency is `emitted - end`).
    pub emitted: f64,
}

struct Candidate {
    class: usize,
    peak: f32,
    peak_frame: u64,
}

pub struct Detector {
    cfg: DetectorConfig,
    labels: Vec<String>,
    reportable: Vec<bool>,
    thresholds: Vec<f32>,
    frame_rate: f64,
    /// Seconds a frame's analysis window reaches past its start (window length) and past
    /// the next frame's start (window − hop): where an event's audio ends.
    win_s: f64,
    tail_s: f64,
    /// The last `window` frames of scores, flat (`[window][classes]`), as a ring.
    history: Vec<f32>,
    /// Frames in `history` so far (up to `window`), and the slot the next frame goes to.
    filled: usize,
    slot: usize,
    sum: Vec<f64>,
    mean: Vec<f32>,
    /// log-energy per frame over the last `span` frames, to place the word's start and end.
    energy: VecDeque<f32>,
    span: usize,
    frame: u64,
    candidate: Option<Candidate>,
    quiet_until: u64,
    /// A word re-arms only once its probability fell below half its threshold, so a word
    /// still inside the smoothing window cannot fire twice.
    armed: Vec<bool>,
    /// Frames each word has been at or above its threshold, up to now.
    sustained: Vec<usize>,
    smoothed: Vec<f32>,
}

impl Detector {
    /// A detector for a model with `labels` and front end `features` (frames, window).
    pub fn new(labels: &[String], features: &FeatureConfig, mut cfg: DetectorConfig) -> Self {
        // A 1 s clip's frames: the default window, and the least span searched for a
        // word's start and end (a short decision window still hears the whole word).
        let clip = features.clip_frames().max(1);
        let rate = features.sample_rate as f64;
        let win_s = features.win_length as f64 / rate;
        if cfg.window == 0 {
            cfg.window = clip;
        }
        let window = cfg.window;
        let span = window.max(clip);
        let reportable = labels
            .iter()
            .map(|l| l != SILENCE && l != UNKNOWN)
            .collect();
        let thresholds = labels
            .iter()
            .map(|l| *cfg.thresholds.get(l).unwrap_or(&cfg.threshold))
            .collect();
        Detector {
            labels: labels.to_vec(),
            reportable,
            thresholds,
            frame_rate: features.frame_rate() as f64,
            win_s,
            tail_s: win_s - features.hop_length as f64 / rate,
            history: vec![0.0; window * labels.len()],
            filled: 0,
            slot: 0,
            sum: vec![0.0; labels.len()],
            mean: vec![0.0; labels.len()],
            energy: VecDeque::with_capacity(span + 1),
            span,
            frame: 0,
            candidate: None,
            quiet_until: 0,
            armed: vec![true; labels.len()],
            sustained: vec![0; labels.len()],
            smoothed: vec![0.0; labels.len()],
            cfg,
        }
    }

    /// Smoothed class probabilities after the last frame.
    pub fn smoothed(&self) -> &[f32] {
        &self.smoothed
    }

    /// Feeds one frame of scores (and its log-energy); returns an event when one completes.
    pub fn push(&mut self, scores: &[f32], log_energy: f32) -> Option<Event> {
        self.smooth(scores, log_energy);
        let frame = self.frame;
        self.frame += 1;
        let (top, p) = self.update_gates();
        let above = self.reportable[top]
            && self.armed[top]
            && p >= self.thresholds[top]
            && self.sustained[top] >= self.cfg.sustain
            && frame >= self.quiet_until;
        if above {
            self.track_candidate(top, p, frame);
        }
        let settled = self
            .candidate
            .as_ref()
            .is_some_and(|c| frame - c.peak_frame >= self.cfg.hold as u64);
        settled.then(|| self.emit(frame))
    }

    /// Slides the window of scores and energies by one frame; refreshes the smoothed posteriors.
    fn smooth(&mut self, scores: &[f32], log_energy: f32) {
        // Ring of the last `window` frames: the slot written now holds the frame leaving.
        let n_cls = self.sum.len();
        let window = self.cfg.window;
        let row = &mut self.history[self.slot * n_cls..(self.slot + 1) * n_cls];
        let full = self.filled == window;
        for ((s, old), v) in self.sum.iter_mut().zip(row.iter_mut()).zip(scores) {
            if full {
                *s -= *old as f64;
            }
            *s += *v as f64;
            *old = *v;
        }
        self.slot = (self.slot + 1) % window;
        self.filled = (self.filled + 1).min(window);
        self.energy.push_back(log_energy);
        if self.energy.len() > self.span {
            self.energy.pop_front();
        }
        let n = self.filled as f64;
        for (m, s) in self.mean.iter_mut().zip(&self.sum) {
            *m = (s / n) as f32;
        }
        softmax_into(&self.mean, &mut self.smoothed);
    }

    /// Re-arms words that fell well below their threshold, counts how long each has held it,
    /// and returns the leading word with its smoothed probability.
    fn update_gates(&mut self) -> (usize, f32) {
        for ((a, n), (&p, &t)) in self
            .armed
            .iter_mut()
            .zip(self.sustained.iter_mut())
            .zip(self.smoothed.iter().zip(&self.thresholds))
        {
            if p < t * 0.5 {
                *a = true;
            }
            *n = if p >= t { *n + 1 } else { 0 };
        }
        self.smoothed
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, p)| (i, *p))
            .unwrap_or((0, 0.0))
    }

    /// Keeps the best candidate of the current rise: a word rising further, or another word
    /// overtaking a partial-window guess.
    fn track_candidate(&mut self, top: usize, p: f32, frame: u64) {
        let best = Candidate {
            class: top,
            peak: p,
            peak_frame: frame,
        };
        match &mut self.candidate {
            Some(c) if p > c.peak => *c = best,
            Some(_) => {}
            None => self.candidate = Some(best),
        }
    }

    /// Emits a pending candidate at the end of a stream.
    pub fn flush(&mut self) -> Option<Event> {
        self.candidate.is_some().then(|| self.emit(self.frame))
    }

    fn emit(&mut self, now: u64) -> Event {
        let c = self.candidate.take().expect("candidate present");
        // Saturating: a refractory period too long to count means "never again".
        self.quiet_until = now.saturating_add(self.cfg.refractory as u64);
        self.armed[c.class] = false;
        // The window ending at the peak holds the word; narrow it to where the energy is
        // within 25 dB (natural log: ~5.8) of its maximum.
        let back = (now - c.peak_frame) as usize;
        let len = self.energy.len();
        let end_idx = len.saturating_sub(1 + back);
        let lo_idx = end_idx.saturating_sub(self.span.saturating_sub(1));
        let seg: Vec<f32> = self
            .energy
            .iter()
            .skip(lo_idx)
            .take(end_idx + 1 - lo_idx)
            .copied()
            .collect();
        let peak_e = seg.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        let first = seg.iter().position(|e| *e > peak_e - 5.8).unwrap_or(0);
        let last = seg
            .iter()
            .rposition(|e| *e > peak_e - 5.8)
            .unwrap_or(seg.len().saturating_sub(1));
        let frame_of = |idx: usize| (self.frame - len as u64 + idx as u64) as f64;
        let hop = 1.0 / self.frame_rate;
        let ms = |t: f64| (t * 1000.0).round() / 1000.0;
        Event {
            word: self.labels[c.class].clone(),
            start: ms(frame_of(lo_idx + first) * hop),
            end: ms((frame_of(lo_idx + last) + 1.0) * hop + self.tail_s),
            score: c.peak,
            // The frame just pushed ends (k·hop + window) into the stream.
            emitted: ms((self.frame as f64 - 1.0) * hop + self.win_s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORD: [f32; 4] = [4.0, 0.0, 0.0, 0.0];
    const QUIET: [f32; 4] = [0.0, 0.0, 0.0, 4.0];

    /// Events of a detector over `frames` of scores (a one-frame window: no smoothing).
    fn detect<'a>(cfg: DetectorConfig, frames: impl Iterator<Item = &'a [f32; 4]>) -> Vec<Event> {
        let labels: Vec<String> = ["yes", "no", SILENCE, UNKNOWN].map(String::from).to_vec();
        let cfg = DetectorConfig { window: 1, ..cfg };
        let mut d = Detector::new(&labels, &FeatureConfig::default(), cfg);
        let mut out: Vec<Event> = frames.filter_map(|s| d.push(s, 0.0)).collect();
        out.extend(d.flush());
        out
    }

    /// `yes` held for `word_frames` frames between quiet ones.
    fn events(sustain: usize, word_frames: usize) -> Vec<Event> {
        let cfg = DetectorConfig {
            sustain,
            ..DetectorConfig::default()
        };
        let frames = (0..50)
            .map(|_| &QUIET)
            .chain((0..word_frames).map(|_| &WORD))
            .chain((0..100).map(|_| &QUIET));
        detect(cfg, frames)
    }

    #[test]
    fn nothing_fires_within_the_refractory_period_however_long() {
        // `yes` twice, 200 frames apart.
        let twice = || (0..2).flat_map(|_| (0..30).map(|_| &WORD).chain((0..200).map(|_| &QUIET)));
        let with = |refractory| {
            let cfg = DetectorConfig {
                refractory,
                ..DetectorConfig::default()
            };
            detect(cfg, twice()).len()
        };
        assert_eq!(with(0), 2);
        assert_eq!(with(199), 2);
        assert_eq!(with(300), 1);
        // Too long to count (a huge `--refractory` once wrapped around to none).
        assert_eq!(with(usize::MAX), 1);
    }

    #[test]
    fn a_word_fires_only_once_it_held_its_threshold_for_the_sustain() {
        // 0 and 1: the first frame above the threshold may fire.
        for sustain in [0, 1, 10, 30] {
            assert_eq!(events(sustain, 30).len(), 1, "sustain {sustain}");
        }
        assert!(events(31, 30).is_empty());
        assert!(events(10, 9).is_empty());
        assert_eq!(events(10, 10)[0].word, "yes");
    }
}
