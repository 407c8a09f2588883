//! Labelled audio to learn from and test on: Speech Commands in its official layout
//! (`gsc`) and synthetic speech from text-to-speech engines (`synth`).

pub mod gsc;
pub mod labeled;
pub mod synth;

pub use gsc::{Clip, Dataset, Split, SplitRule, Task, label_index, task_labels};
pub use labeled::{LabeledAudio, load_labeled};
