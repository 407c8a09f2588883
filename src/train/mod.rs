//! Training with surrogate gradients and backpropagation through time (burn), and the
//! readout fits that retraining and ensembles use.

pub mod augment;
pub mod checkpoint;
pub mod distill;
mod examples;
pub mod joint_readout;
pub mod negatives;
pub mod readout_fit;
pub mod replay_pick;
pub mod retrain;
pub mod trainer;
pub mod vtlp;

pub use trainer::{TrainOptions, train, train_for};
