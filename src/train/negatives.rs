//! Running speech as negatives. A detector runs over talk, not over 1 s clips: every
//! frame ends a window that it scores. A no-command stream voiced by the *training*
//! speakers (their other words back to back, sentences that hold no command word, pauses
//! and noise) is run through the model, and cut into the windows where it comes closest
//! to reporting a word (hard negatives) and into windows at random (breadth). Each
//! window keeps the second before it, so a readout fit hears it as the streaming engine
//! does. The sentences here are not those of the benchmark (`stream_bench::SENTENCES`).

use anyhow::{Result, bail};
use serde::Serialize;

use crate::data::{Dataset, Split};
use crate::model::Model;
use crate::stream_bench::{Material, no_command_stream, run_stream};
use crate::util::Rng;

/// Sentences without a command word (nor a homophone of one) for training: near-misses
/// ("often", "goal", "lift", "upper", "stock", "yet", "done", "own", "onions", "office",
/// "opened") and everyday talk.
pub const TRAINING_SENTENCES: [&str; 60] = [
    "the library closes early every sunday",
    "she often takes the bus to work",
    "we have done all the homework for today",
    "the goal of the game is to score more points",
    "they own a small farm near the lake",
    "can you lift this heavy box for me",
    "the stock market was quiet this week",
    "he has not finished his dinner yet",
    "the upper shelf is full of old books",
    "my brother is going to the doctor at noon",
    "the kitten sleeps in a basket by the fire",
    "our neighbours painted their house blue",
    "the teacher asked a difficult question",
    "a cold wind blew across the valley",
    "I would like a cup of tea with milk",
    "the concert starts at half past seven",
    "please close the window when it rains",
    "the farmer sold apples at the market",
    "we watched a film about the ocean",
    "the baby laughed at the funny face",
    "his car needs new tyres before winter",
    "the hotel was clean and very quiet",
    "she learned to swim when she was six",
    "the path goes through the forest to the hill",
    "many birds fly south in autumn",
    "the chef cut the onions very thin",
    "I forgot my umbrella at the office",
    "the old clock in the hall is slow",
    "they planted seven trees in the park",
    "the doctor said I should rest for a week",
    "our team won the match last night",
    "the river was frozen for three months",
    "do you have change for a ten pound note",
    "the bakery sells fresh bread every morning",
    "we need more chairs for the guests",
    "the light in the kitchen is broken",
    "she wrote a long letter to her friend",
    "the museum has a famous painting",
    "a bus full of tourists arrived at noon",
    "he plays the guitar in a small band",
    "the soup is too hot to eat",
    "the mountains were covered with snow",
    "my grandmother makes the best cakes",
    "the shop around the corner sells fruit",
    "they travelled by ship across the sea",
    "the students wait for the results",
    "I saw a fox in the garden last night",
    "the phone rang twice and then went quiet",
    "she keeps her keys in a blue bowl",
    "we should leave before the traffic gets bad",
    "the lesson was about the history of rome",
    "this road leads to the old harbour",
    "the cat jumped over the fence",
    "my uncle builds boats by hand",
    "the air smells of rain and grass",
    "could we have the bill please",
    "the printer ran out of paper again",
    "the stars are bright above the desert",
    "he opened the door and looked outside",
    "the festival lasts for three days",
];

#[derive(Debug, Clone)]
pub struct MiningOptions {
    /// Minutes of no-command stream to cut windows from.
    pub minutes: f64,
    /// TTS engines voicing `TRAINING_SENTENCES` (missing ones are skipped), and voices
    /// per engine and sentence.
    pub engines: Vec<String>,
    pub voices: usize,
    pub seed: u64,
    /// Hard negatives: windows whose highest word probability peaks at or above this.
    pub level: f32,
    /// Windows at random per minute of stream, whatever the model makes of them.
    pub random_per_minute: usize,
}

impl Default for MiningOptions {
    fn default() -> Self {
        MiningOptions {
            minutes: 30.0,
            engines: ["espeak", "flite", "festival"].map(String::from).to_vec(),
            voices: 2,
            seed: 1,
            level: 0.3,
            random_per_minute: 20,
        }
    }
}

/// A 1 s window of running speech with the audio before it (whole hops).
pub struct Negative {
    pub context: Vec<f32>,
    pub window: Vec<f32>,
    /// The highest word probability the model gave the window.
    pub score: f32,
}

#[derive(Debug, Clone, Serialize)]
pub struct MiningReport {
    pub stream_minutes: f64,
    pub hard: usize,
    pub random: usize,
    pub level: f32,
    pub other_word_clips: usize,
    pub sentences: usize,
    pub missing_engines: Vec<String>,
}

/// Frames at least this far apart count as different hard negatives (a word fires once).
const SPACING: usize = 30;

/// Cuts hard and random negative windows from a no-command stream of the training
/// speakers of `ds` (the model's own split).
pub fn mine(
    model: &Model,
    ds: &Dataset,
    opts: &MiningOptions,
) -> Result<(Vec<Negative>, MiningReport)> {
    let rate = model.config.features.sample_rate;
    let texts = TRAINING_SENTENCES;
    let voices = (opts.engines.as_slice(), opts.voices);
    let (m, missing) = Material::load(model, ds, Split::Train, &texts, voices, opts.seed)?;
    if m.others.is_empty() && m.sentences.is_empty() {
        bail!("no other-word clips of the training speakers and no sentences to make negatives of");
    }
    let stream = no_command_stream(&m, opts.minutes, rate, opts.seed);
    let closest = run_stream(model, &stream, None).closest_to_firing(model);
    let cut = Cutter::new(model, &stream.samples);
    let hard = peaks(&closest, opts.level, cut.first_frame());
    let mut rng = Rng::new(opts.seed ^ 0x6e65_6761);
    let n_random = (opts.random_per_minute as f64 * opts.minutes).round() as usize;
    // Frames that end a whole window (none in a stream shorter than one).
    let span = closest.len().saturating_sub(cut.first_frame());
    let random: Vec<usize> = match span {
        0 => Vec::new(),
        _ => (0..n_random)
            .map(|_| cut.first_frame() + rng.below(span))
            .collect(),
    };
    let report = MiningReport {
        stream_minutes: opts.minutes,
        hard: hard.len(),
        random: random.len(),
        level: opts.level,
        other_word_clips: m.others.len(),
        sentences: m.sentences.len(),
        missing_engines: missing,
    };
    let negatives = hard
        .iter()
        .chain(&random)
        .map(|&f| cut.negative(f, closest[f]))
        .collect();
    Ok((negatives, report))
}

/// Local maxima of `closest` at or above `level`, highest first, `SPACING` apart.
fn peaks(closest: &[f32], level: f32, first: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (first..closest.len())
        .filter(|&f| closest[f] >= level)
        .collect();
    order.sort_by(|a, b| closest[*b].total_cmp(&closest[*a]));
    let mut taken: Vec<usize> = Vec::new();
    for f in order {
        if taken.iter().all(|t| t.abs_diff(f) >= SPACING) {
            taken.push(f);
        }
    }
    taken.sort_unstable();
    taken
}

/// Cuts the 1 s window that ends at a frame, with the second before it.
struct Cutter<'a> {
    samples: &'a [f32],
    hop: usize,
    clip: usize,
    clip_frames: usize,
}

impl<'a> Cutter<'a> {
    fn new(model: &Model, samples: &'a [f32]) -> Self {
        let f = &model.config.features;
        Cutter {
            samples,
            hop: f.hop_length,
            clip: f.sample_rate as usize,
            clip_frames: f.clip_frames(),
        }
    }

    /// The first frame that ends a whole window.
    fn first_frame(&self) -> usize {
        self.clip_frames - 1
    }

    /// The window of `clip_frames` frames ending at frame `f` starts at
    /// `(f + 1 − clip_frames) · hop`: the clip's frames are the window's own.
    fn negative(&self, f: usize, score: f32) -> Negative {
        let start = (f + 1 - self.clip_frames) * self.hop;
        let end = (start + self.clip).min(self.samples.len());
        let mut window = self.samples[start..end].to_vec();
        window.resize(self.clip, 0.0);
        let context_start = start.saturating_sub(self.clip / self.hop * self.hop);
        Negative {
            context: self.samples[context_start..start].to_vec(),
            window,
            score,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream_bench::SENTENCES;

    const COMMANDS: [&str; 13] = [
        "yes", "no", "know", "up", "down", "left", "right", "write", "on", "off", "stop", "go",
        "rite",
    ];

    #[test]
    fn training_sentences_hold_no_command_word_and_are_not_the_benchmarks() {
        for s in TRAINING_SENTENCES {
            for w in s.split_whitespace() {
                assert!(!COMMANDS.contains(&w), "{w:?} in {s:?}");
            }
            assert!(!SENTENCES.contains(&s), "{s:?} is a benchmark sentence");
        }
    }

    #[test]
    fn peaks_are_local_maxima_apart() {
        let mut c = vec![0.0f32; 200];
        c[50] = 0.9;
        c[55] = 0.8; // too close to 50
        c[120] = 0.5;
        c[150] = 0.2; // below the level
        assert_eq!(peaks(&c, 0.3, 0), vec![50, 120]);
        assert_eq!(peaks(&c, 0.3, 60), vec![120]);
    }
}
