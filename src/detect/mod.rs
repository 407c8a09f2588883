//! From a stream of samples to word events.

pub mod detector;
pub mod engine;

pub use detector::{Detector, DetectorConfig, Event};
pub use engine::Engine;
