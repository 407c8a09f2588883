//! burn's wgpu backend (feature `gpu`): the training graph on the GPU device gives the
//! engine's logits, and a training step runs. In CI it runs on Mesa's CPU Vulkan driver.
#![cfg(feature = "gpu")]

use std::path::Path;

use burn::tensor::{Tensor, TensorData};
use spikeword::features::MelFrame;
use spikeword::snn::Mode;
use spikeword::train::net::TrainNet;
use spikeword::train::{DeviceKind, trainer::burn_device};
use spikeword::{Model, load_wav};

#[test]
fn wgpu_forward_matches_the_cpu_engine() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let m = Model::load(&root.join("models/gsc12.safetensors")).unwrap();
    let x = load_wav(&root.join("assets/clips/yes_0.wav"), 16000).unwrap();
    let mut mf = MelFrame::new(&m.config.features);
    let (input, _) = m.encode(&mut mf, &x);
    let (want, _) = m.net.first().forward_clip(&input, Mode::Dense);
    let dev = burn_device(DeviceKind::Gpu).unwrap();
    let net = TrainNet::from_network(m.net.first(), &dev);
    let c = m.config.encoder.out_channels(m.config.features.n_mels);
    let t = input.len() / c;
    let xt: Tensor<3> = Tensor::<2>::from_data(TensorData::new(input, [t, c]), &dev)
        .swap_dims(0, 1)
        .unsqueeze();
    let got = net
        .forward(xt)
        .logits
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    for (a, b) in got.iter().zip(&want) {
        assert!(
            (a - b).abs() < 1e-2 * b.abs().max(1.0),
            "{got:?} vs {want:?}"
        );
    }
}

#[test]
fn a_training_step_runs_on_the_gpu_device() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_spikeword"))
        .args([
            "train-bench",
            "--device",
            "gpu",
            "--batch",
            "8",
            "--steps",
            "2",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["clips_per_second"].as_f64().unwrap() > 0.0);
}
