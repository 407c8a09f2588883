//! Teachers for distillation, at training time only: the MLPerf Tiny DS-CNN keyword model
//! (class probabilities) and Google's speech_embedding (96-d vectors), both run in Rust by
//! tract. Files and provenance: `models/teachers/`.

pub mod embedding;
pub mod keyword;
pub mod mfcc;

pub use embedding::SpeechEmbedding;
pub use keyword::KeywordTeacher;

/// Where a checkout keeps the keyword teacher.
pub const KEYWORD_TEACHER: &str = "models/teachers/mlperf_dscnn/kws_ref_model_f32weights.tflite";
/// Where a checkout keeps the speech embedding.
pub const SPEECH_EMBEDDING: &str = "models/teachers/speech_embedding/speech-embedding-b1.onnx";
