//! Training with surrogate gradients and backpropagation through time (burn).

pub mod augment;
pub mod data;
pub mod joint_readout;
pub mod net;
pub mod readout_fit;
pub mod retrain;
pub mod synth;
pub mod trainer;

pub use data::{Dataset, Split, SplitRule, Task};
pub use trainer::{DeviceKind, TrainOptions, model_split_rule, train, train_for};
