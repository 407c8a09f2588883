//! The streaming engine: samples in, word events out, one 10 ms frame at a time with
//! all state (mel window, encoder, conv histories, membranes, smoothing) carried over.
//! Cost per frame is constant however long it runs.

use crate::encoding::{self, Encoder};
use crate::features::{Normalizer, StreamingMel};
use crate::model::Model;
use crate::snn::{EnsembleState, FixedEnsemble, FixedEnsembleState, Mode};

use super::detector::{Detector, DetectorConfig, Event};

/// The arithmetic the networks run in.
enum Backend<'m> {
    Float(EnsembleState),
    /// `snn::fixed`: integers as on a chip.
    Integer(&'m FixedEnsemble, FixedEnsembleState),
}

pub struct Engine<'m> {
    model: &'m Model,
    mel: StreamingMel,
    norm: Normalizer,
    encoder: Box<dyn Encoder>,
    backend: Backend<'m>,
    detector: Detector,
    mode: Mode,
    enc: Vec<f32>,
    /// Log-mel frames of the current push, flat (reused: no allocation per frame).
    frames: Vec<f32>,
    /// Spikes fed into the network since the start.
    pub input_spikes: u64,
}

impl<'m> Engine<'m> {
    pub fn new(model: &'m Model, mut cfg: DetectorConfig) -> Self {
        if cfg.window == 0 {
            cfg.window = model.decision_window();
        }
        let n = model.config.features.n_mels;
        let encoder = encoding::build(&model.config.encoder, n);
        Engine {
            mel: StreamingMel::new(&model.config.features),
            norm: model.normalizer(),
            enc: vec![0.0; encoder.out_channels()],
            encoder,
            backend: Backend::Float(model.net.new_state()),
            detector: Detector::new(model.labels(), &model.config.features, cfg),
            mode: Mode::Event,
            model,
            frames: Vec::new(),
            input_spikes: 0,
        }
    }

    /// Dense synaptic integration instead of event-driven (benchmarks).
    pub fn with_mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Runs the networks in integer arithmetic (`Model::integer_engine`) from the start.
    pub fn in_integers(mut self, engine: &'m FixedEnsemble) -> Self {
        self.backend = Backend::Integer(engine, engine.new_state());
        self
    }

    /// Feeds samples at the model rate; calls `on_event` for each completed word.
    pub fn push(&mut self, samples: &[f32], mut on_event: impl FnMut(Event)) {
        let mut frames = std::mem::take(&mut self.frames);
        frames.clear();
        self.mel.push(samples, |f| frames.extend_from_slice(f));
        let n_mels = self.model.config.features.n_mels;
        for f in frames.chunks_exact_mut(n_mels) {
            if let Some(e) = self.step_frame(f) {
                on_event(e);
            }
        }
        self.frames = frames;
    }

    /// Feeds samples like `push`, but hands each frame's raw class scores and log-energy
    /// to `on_frame` instead of the detector (to replay one run through many detectors).
    pub fn push_scores(&mut self, samples: &[f32], mut on_frame: impl FnMut(&[f32], f32)) {
        let mut frames = std::mem::take(&mut self.frames);
        frames.clear();
        self.mel.push(samples, |f| frames.extend_from_slice(f));
        let n_mels = self.model.config.features.n_mels;
        for f in frames.chunks_exact_mut(n_mels) {
            let energy = log_energy(f);
            self.norm.apply(f);
            self.input_spikes += self.encoder.encode(f, &mut self.enc) as u64;
            on_frame(
                step_networks(&mut self.backend, self.model, &self.enc, self.mode),
                energy,
            );
        }
        self.frames = frames;
    }

    /// One log-mel frame through normaliser, encoder, network and detector.
    pub fn step_frame(&mut self, logmel: &mut [f32]) -> Option<Event> {
        let energy = log_energy(logmel);
        self.norm.apply(logmel);
        self.input_spikes += self.encoder.encode(logmel, &mut self.enc) as u64;
        let scores = step_networks(&mut self.backend, self.model, &self.enc, self.mode);
        self.detector.push(scores, energy)
    }

    /// Ends the stream: emits a word still being held.
    pub fn finish(&mut self) -> Option<Event> {
        self.detector.flush()
    }

    /// Smoothed class probabilities after the latest frame.
    pub fn smoothed(&self) -> &[f32] {
        self.detector.smoothed()
    }

    /// The float networks' state (`None` in integers).
    pub fn state(&self) -> Option<&EnsembleState> {
        match &self.backend {
            Backend::Float(st) => Some(st),
            Backend::Integer(..) => None,
        }
    }

    pub fn frames_seen(&self) -> u64 {
        match &self.backend {
            Backend::Float(st) => st.frames(),
            Backend::Integer(_, st) => st.frames(),
        }
    }
}

/// One frame of encoded input through the networks; their mean class scores.
fn step_networks<'s>(
    backend: &'s mut Backend,
    model: &Model,
    input: &[f32],
    mode: Mode,
) -> &'s [f32] {
    match backend {
        Backend::Float(st) => model.net.step(st, input, mode),
        Backend::Integer(engine, st) => engine.step(st, input),
    }
}

/// Log of a frame's total mel energy (where the detector places a word's start and end).
fn log_energy(logmel: &[f32]) -> f32 {
    logmel.iter().map(|v| v.exp()).sum::<f32>().max(1e-10).ln()
}
