//! Energy-based voice activity detection for `record`: finds utterances in a stream of
//! samples by their 10 ms frame energy against the noise floor, taken as a low
//! percentile of the last 3 s (robust to bursts of background noise, unlike a mean). An
//! utterance starts 15 dB above the floor and goes on while it stays 9 dB above
//! (hysteresis: a short word in noise is loud only at its peak). Digital silence (zeros
//! pasted into a recording, a muted input) is left out of the floor, and until a second of
//! sound is heard the floor is at most a quiet room's, so that a word at the very start of
//! a recording is found; every utterance must still peak 15 dB over the floor known when it
//! ends.

/// Frames quieter than this (dB re full scale) are digital silence, below any microphone's
/// own noise: they tell nothing about the room.
const DIGITAL_SILENCE_DB: f32 = -100.0;
/// The floor assumed until [`LEARN_FRAMES`] frames of sound are heard: a quiet room.
const PRIOR_FLOOR_DB: f32 = -50.0;
/// One second of 10 ms frames.
const LEARN_FRAMES: usize = 100;
/// The floor is this percentile of the last 3 s.
const FLOOR_PERCENTILE: usize = 20;

/// One detected utterance, in samples from the start of the stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Utterance {
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone)]
pub struct Vad {
    frame: usize,
    /// dB above the noise floor that starts an utterance.
    margin_db: f32,
    /// dB above the noise floor that keeps one going.
    hold_db: f32,
    min_speech: usize,
    max_gap: usize,
    floor_db: f32,
    recent: std::collections::VecDeque<f32>,
    acc: f64,
    n_in_frame: usize,
    pos: usize,
    speech_start: Option<usize>,
    speech_frames: usize,
    quiet_frames: usize,
    last_loud_end: usize,
    /// The loudest frame of the utterance under way.
    peak_db: f32,
}

impl Vad {
    /// `rate` in Hz; speech must last 80 ms and ends after 300 ms of quiet.
    pub fn new(rate: u32) -> Self {
        let frame = (rate / 100) as usize;
        Vad {
            frame,
            margin_db: 15.0,
            hold_db: 9.0,
            min_speech: 8,
            max_gap: 30,
            floor_db: PRIOR_FLOOR_DB,
            recent: std::collections::VecDeque::with_capacity(301),
            acc: 0.0,
            n_in_frame: 0,
            pos: 0,
            speech_start: None,
            speech_frames: 0,
            quiet_frames: 0,
            last_loud_end: 0,
            peak_db: f32::NEG_INFINITY,
        }
    }

    /// The noise floor now (dB re full scale).
    pub fn floor_db(&self) -> f32 {
        self.floor_db
    }

    /// Feeds samples; returns utterances that ended within them.
    pub fn push(&mut self, samples: &[f32]) -> Vec<Utterance> {
        let mut out = Vec::new();
        for &s in samples {
            self.acc += (s as f64) * (s as f64);
            self.n_in_frame += 1;
            self.pos += 1;
            if self.n_in_frame == self.frame {
                let db = 10.0 * ((self.acc / self.frame as f64).max(1e-12)).log10() as f32;
                self.acc = 0.0;
                self.n_in_frame = 0;
                if let Some(u) = self.frame_done(db) {
                    out.push(u);
                }
            }
        }
        out
    }

    fn frame_done(&mut self, db: f32) -> Option<Utterance> {
        self.learn_floor(db);
        let above = |margin: f32| db > self.floor_db + margin && db > -70.0 + margin;
        let loud = match self.speech_start {
            None => above(self.margin_db),
            Some(_) => above(self.hold_db),
        };
        match (self.speech_start, loud) {
            (None, true) => {
                self.speech_start = Some(self.pos - self.frame);
                self.speech_frames = 1;
                self.quiet_frames = 0;
                self.last_loud_end = self.pos;
                self.peak_db = db;
            }
            (Some(_), true) => {
                self.speech_frames += 1;
                self.quiet_frames = 0;
                self.last_loud_end = self.pos;
                self.peak_db = self.peak_db.max(db);
            }
            (Some(_), false) => {
                self.quiet_frames += 1;
                if self.quiet_frames > self.max_gap {
                    return self.finish();
                }
            }
            (None, false) => {}
        }
        None
    }

    /// The floor from the last 3 s of sound, digital silence left out; at most the prior
    /// until a second of it is heard (speech from the first frame is not the floor).
    fn learn_floor(&mut self, db: f32) {
        if db > DIGITAL_SILENCE_DB {
            self.recent.push_back(db);
            if self.recent.len() > 300 {
                self.recent.pop_front();
            }
        }
        if self.recent.is_empty() {
            return;
        }
        let mut sorted: Vec<f32> = self.recent.iter().copied().collect();
        sorted.sort_by(f32::total_cmp);
        let floor = sorted[sorted.len() * FLOOR_PERCENTILE / 100];
        self.floor_db = if sorted.len() < LEARN_FRAMES {
            floor.min(PRIOR_FLOOR_DB)
        } else {
            floor
        };
    }

    /// Ends the utterance under way (the stream ended, or it went quiet): returned if it
    /// lasted and peaked over the floor known now.
    pub fn finish(&mut self) -> Option<Utterance> {
        let start = self.speech_start.take()?;
        let real =
            self.speech_frames >= self.min_speech && self.peak_db > self.floor_db + self.margin_db;
        real.then_some(Utterance {
            start,
            end: self.last_loud_end,
        })
    }
}

/// Cuts `[u.start, u.end)` out of `x` (indices relative to `offset`), centred in `len` samples.
pub fn centred_clip(x: &[f32], offset: usize, u: &Utterance, len: usize) -> Vec<f32> {
    let s = u.start.saturating_sub(offset).min(x.len());
    let e = u.end.saturating_sub(offset).min(x.len()).max(s);
    let seg = &x[s..e];
    if seg.len() >= len {
        let c = (seg.len() - len) / 2;
        return seg[c..c + len].to_vec();
    }
    // Centre the word, filling around it with the recording's own surroundings.
    let pad = (len - seg.len()) / 2;
    let from = s.saturating_sub(pad);
    let mut v: Vec<f32> = x[from..s].to_vec();
    v.splice(0..0, std::iter::repeat_n(0.0, pad - (s - from)));
    v.extend_from_slice(seg);
    let after = (len - v.len()).min(x.len() - e);
    v.extend_from_slice(&x[e..e + after]);
    v.resize(len, 0.0);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_word_loud_only_at_its_peak_is_found() {
        // The demo recording's "yes" (1.08-1.35 s) peaks 18 dB over its noise, and only
        // 70 ms of it is 15 dB over.
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo_words.wav");
        let x = crate::audio::load_wav(&path, 16000).unwrap();
        let mut vad = Vad::new(16000);
        let found = vad.push(&x[..32000]);
        let yes = found.iter().find(|u| u.start < 19000 && u.end > 18000);
        let yes = yes.unwrap_or_else(|| panic!("{found:?}"));
        assert!(yes.end - yes.start > 2400, "{yes:?}");
    }

    /// Utterances in `x`, fed in uneven pieces as a device delivers them.
    fn utterances(x: &[f32]) -> Vec<Utterance> {
        let mut vad = Vad::new(16000);
        let mut found = Vec::new();
        for c in x.chunks(777) {
            found.extend(vad.push(c));
        }
        found.extend(vad.finish());
        found
    }

    fn noise(seconds: f32, rms: f32, seed: u64) -> Vec<f32> {
        let mut r = crate::util::Rng::new(seed);
        (0..(seconds * 16000.0) as usize)
            .map(|_| r.normal() * rms)
            .collect()
    }

    #[test]
    fn a_word_at_the_very_start_of_a_recording_is_found() {
        // The demo's "yes" with the recording cut where the word begins (as a TTS engine
        // writes a word: no leading silence): the floor cannot be learnt before it.
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo_words.wav");
        let x = crate::audio::load_wav(&path, 16000).unwrap();
        let found = utterances(&x[17280..40000]);
        assert!(
            found.first().is_some_and(|u| u.start < 800 && u.end > 3200),
            "{found:?}"
        );
    }

    #[test]
    fn digital_silence_pasted_into_noise_is_not_the_floor() {
        // Room noise at -40 dB, 3 s of zeros, the same noise again: no utterance (the floor
        // once fell to the zeros and the noise coming back read as 2 s of speech).
        let mut x = noise(2.0, 0.01, 1);
        x.extend(vec![0.0; 48000]);
        x.extend(noise(2.0, 0.01, 2));
        assert_eq!(utterances(&x), vec![]);
    }

    #[test]
    fn a_noisy_room_from_the_first_frame_is_no_utterance_but_a_word_in_it_is() {
        // Noise at -33 dB is 17 dB over the prior floor until the floor is learnt: it may
        // open an utterance, which must not outlast the learning.
        let mut x = noise(4.0, 0.022, 3);
        assert_eq!(utterances(&x), vec![]);
        for (i, v) in x[40000..48000].iter_mut().enumerate() {
            *v += 0.4 * (i as f32 * 0.2).sin();
        }
        let found = utterances(&x);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!((found[0].start as i64 - 40000).abs() < 400, "{found:?}");
    }

    #[test]
    fn finds_two_bursts_in_quiet_noise() {
        let mut x = noise(4.0, 0.001, 1);
        for (a, b) in [(16000usize, 24000usize), (40000, 46000)] {
            for (i, v) in x[a..b].iter_mut().enumerate() {
                *v += 0.3 * (i as f32 * 0.2).sin();
            }
        }
        let found = utterances(&x);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            (found[0].start as i64 - 16000).abs() < 400
                && (found[0].end as i64 - 24000).abs() < 400
        );
        let clip = centred_clip(&x, 0, &found[1], 16000);
        assert_eq!(clip.len(), 16000);
        // The burst sits in the middle.
        let mid: f32 = clip[7000..9000].iter().map(|v| v.abs()).sum();
        let edge: f32 = clip[..2000].iter().map(|v| v.abs()).sum();
        assert!(mid > 20.0 * edge);
    }
}
