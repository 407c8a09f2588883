//! Training with surrogate gradients and backpropagation through time (burn), and the
//! readout fits that retraining and ensembles use.

pub mod augment;
pub mod checkpoint;
pub mod distill;
pub mod joint_readout;
pub mod readout_fit;
pub mod retrain;
pub mod trainer;

pub use trainer::{TrainOptions, train, train_for};
