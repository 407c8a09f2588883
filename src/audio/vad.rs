//! Energy-based voice activity detection for `record`: finds utterances in a stream of
//! samples by their 10 ms frame energy against the noise floor, taken as a low
//! percentile of the last 3 s (robust to bursts of background noise, unlike a mean). An
//! utterance starts 15 dB above the floor and goes on while it stays 9 dB above
//! (hysteresis: a short word in noise is loud only at its peak).

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
    frames_seen: usize,
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
            floor_db: -60.0,
            recent: std::collections::VecDeque::with_capacity(301),
            acc: 0.0,
            n_in_frame: 0,
            pos: 0,
            speech_start: None,
            speech_frames: 0,
            quiet_frames: 0,
            last_loud_end: 0,
            frames_seen: 0,
        }
    }

    /// Current level of the last frame relative to full scale (dB), for a meter.
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
        self.frames_seen += 1;
        self.recent.push_back(db);
        if self.recent.len() > 300 {
            self.recent.pop_front();
        }
        let mut sorted: Vec<f32> = self.recent.iter().copied().collect();
        sorted.sort_by(f32::total_cmp);
        self.floor_db = sorted[sorted.len() / 5];
        if self.frames_seen < 10 {
            return None; // learn the floor first
        }
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
            }
            (Some(_), true) => {
                self.speech_frames += 1;
                self.quiet_frames = 0;
                self.last_loud_end = self.pos;
            }
            (Some(start), false) => {
                self.quiet_frames += 1;
                if self.quiet_frames > self.max_gap {
                    self.speech_start = None;
                    if self.speech_frames >= self.min_speech {
                        return Some(Utterance {
                            start,
                            end: self.last_loud_end,
                        });
                    }
                }
            }
            (None, false) => {}
        }
        None
    }

    /// Ends the stream: an utterance still open is returned.
    pub fn finish(&mut self) -> Option<Utterance> {
        let start = self.speech_start.take()?;
        (self.speech_frames >= self.min_speech).then_some(Utterance {
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

    #[test]
    fn finds_two_bursts_in_quiet_noise() {
        let rate = 16000;
        let mut r = crate::util::Rng::new(1);
        let mut x: Vec<f32> = (0..rate * 4).map(|_| r.normal() * 0.001).collect();
        for (a, b) in [(16000usize, 24000usize), (40000, 46000)] {
            for (i, v) in x[a..b].iter_mut().enumerate() {
                *v += 0.3 * (i as f32 * 0.2).sin();
            }
        }
        let mut vad = Vad::new(rate as u32);
        let mut found = Vec::new();
        for c in x.chunks(777) {
            found.extend(vad.push(c));
        }
        found.extend(vad.finish());
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
