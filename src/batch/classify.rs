//! Batched clip classification on burn (the GPU path of `classify`): the same clip
//! decision as `Model::classify`, many clips at once.

use anyhow::{Result, anyhow};
use burn::tensor::{Tensor, TensorData, activation::softmax};

use crate::model::Model;

use super::device::{DeviceKind, burn_device, ops_for};
use super::net::TrainNet;

/// Clips per batch: large enough to fill a GPU, small enough for its memory.
const BATCH: usize = 256;

/// Class probabilities of each clip (`samples` at the model rate, all of one length) on
/// `device`; ensemble members vote by their mean logits, as in `snn::Ensemble`.
pub fn classify_clips(
    model: &Model,
    clips: &[Vec<f32>],
    device: DeviceKind,
) -> Result<Vec<Vec<f32>>> {
    let dev = burn_device(device)?;
    let nets: Vec<TrainNet> = model
        .net
        .members
        .iter()
        .map(|n| TrainNet::from_network(n, &dev).with_ops(ops_for(device)))
        .collect();
    let c = model
        .config
        .encoder
        .out_channels(model.config.features.n_mels);
    let inputs: Vec<Vec<f32>> = crate::util::parallel_map(clips, |x| {
        crate::features::with_mel_frame(&model.config.features, |mf| model.encode(mf, x).0)
    });
    let n = model.n_labels();
    let mut out = Vec::with_capacity(clips.len());
    for batch in inputs.chunks(BATCH) {
        let t = batch[0].len() / c;
        if batch.iter().any(|v| v.len() != t * c) {
            return Err(anyhow!("clips of different lengths in one batch"));
        }
        let mut xs = Vec::with_capacity(batch.len() * c * t);
        for v in batch {
            xs.extend(crate::batch::net::channels_first(v, c));
        }
        let x: Tensor<3> = Tensor::from_data(TensorData::new(xs, [batch.len(), c, t]), &dev);
        let logits = nets
            .iter()
            .map(|net| net.forward(x.clone()).logits)
            .reduce(|a, b| a + b)
            .ok_or_else(|| anyhow!("a model without networks"))?
            .div_scalar(nets.len() as f32);
        let p = softmax(logits, 1)
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| anyhow!("reading the scores back: {e:?}"))?;
        out.extend(p.chunks_exact(n).map(<[f32]>::to_vec));
    }
    Ok(out)
}
