//! burn's wgpu backend (feature `gpu`): the training graph on the GPU device gives the
//! engine's logits, the LIF kernel gives the per-frame graph's gradients, and training
//! steps run. In CI it runs on Mesa's CPU Vulkan driver.
#![cfg(feature = "gpu")]

use std::path::Path;

use burn::tensor::{Tensor, TensorData};
use spikeword::batch::net::{LayerOps, TrainNet};
use spikeword::batch::{DeviceKind, burn_device, ops_for};
use spikeword::config::{Reset, Surrogate};
use spikeword::features::MelFrame;
use spikeword::snn::Mode;
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
    let net = TrainNet::from_network(m.net.first(), &dev).with_ops(ops_for(DeviceKind::Gpu));
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

/// Losses of `steps` Adam steps on ten real clips, and the network they leave, on `kind`.
fn fit_steps(kind: DeviceKind, steps: usize) -> (Vec<f32>, spikeword::snn::Network) {
    use burn::optim::{AdamConfig, GradientsParams};
    use burn::tensor::Int;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let m = Model::load(&root.join("models/gsc12.safetensors")).unwrap();
    let words = [
        "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go",
    ];
    let mut mf = MelFrame::new(&m.config.features);
    let c = m.config.encoder.out_channels(m.config.features.n_mels);
    let mut xs = Vec::new();
    for w in words {
        let x = load_wav(&root.join(format!("assets/clips/{w}_0.wav")), 16000).unwrap();
        let (enc, _) = m.encode(&mut mf, &spikeword::audio::fit_length(&x, 16000));
        xs.extend(spikeword::batch::net::channels_first(&enc, c));
    }
    let t = xs.len() / (c * words.len());
    let labels: Vec<i64> = words
        .iter()
        .map(|w| m.labels().iter().position(|l| l == w).unwrap() as i64)
        .collect();
    let dev = burn_device(kind).unwrap().autodiff();
    let mut tn = TrainNet::from_network(m.net.first(), &dev).with_ops(ops_for(kind));
    let mut optim = AdamConfig::new().init();
    let mut losses = Vec::new();
    for _ in 0..steps {
        let x: Tensor<3> = Tensor::from_data(TensorData::new(xs.clone(), [10, c, t]), &dev);
        let y: Tensor<1, Int> = Tensor::from_data(TensorData::new(labels.clone(), [10]), &dev);
        let l = spikeword::batch::net::loss(&tn.forward(x), y, 0.03, 4.0);
        losses.push(l.clone().into_scalar::<f32>());
        let grads = GradientsParams::from_grads(l.backward(), &tn);
        tn = optim
            .step(3e-3, tn, grads)
            .clamp(spikeword::batch::net::BETA_MAX);
    }
    (losses, tn.to_network())
}

/// Loss and the gradients of every layer parameter on random input, run by `ops`.
fn loss_and_grads(net: &spikeword::snn::Network, ops: LayerOps) -> (f32, Vec<Vec<f32>>) {
    use burn::tensor::Int;
    let dev = burn_device(DeviceKind::Gpu).unwrap().autodiff();
    let mut r = spikeword::util::Rng::new(4);
    let c = net.layers[0].c_in;
    let (b, t) = (3, 60);
    let x: Vec<f32> = (0..b * c * t).map(|_| r.normal() * 1.5).collect();
    let tn = TrainNet::from_network(net, &dev).with_ops(ops);
    let x: Tensor<3> = Tensor::from_data(TensorData::new(x, [b, c, t]), &dev);
    let y: Tensor<1, Int> = Tensor::from_data(TensorData::new(vec![1i64, 5, 9], [b]), &dev);
    let l = spikeword::batch::net::loss(&tn.forward_train(x, 10, None), y, 0.03, 4.0);
    let lv = l.clone().into_scalar::<f32>();
    let grads = l.backward();
    let v = |t: Tensor<1>| t.into_data().try_to_vec::<f32>().unwrap();
    let mut out = Vec::new();
    for layer in &tn.layers {
        out.push(v(layer.weight.val().grad(&grads).unwrap().flatten(0, 2)));
        for p in [&layer.bias, &layer.beta, &layer.threshold] {
            out.push(v(p.val().grad(&grads).unwrap()));
        }
    }
    (lv, out)
}

#[test]
fn the_lif_kernel_gives_the_graphs_gradients() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let m = Model::load(&root.join("models/gsc12.safetensors")).unwrap();
    for reset in [Reset::Subtract, Reset::Zero] {
        for surrogate in [
            Surrogate::Sigmoid,
            Surrogate::FastSigmoid,
            Surrogate::Arctan,
        ] {
            let mut net = m.net.first().clone();
            net.config.reset = reset;
            net.config.surrogate = surrogate;
            let (lk, gk) = loss_and_grads(&net, LayerOps::FusedLif);
            let (lg, gg) = loss_and_grads(&net, LayerOps::Graph);
            let what = format!("{reset:?} {surrogate:?}");
            assert!(
                (lk - lg).abs() <= 1e-5 * lg.abs(),
                "{what}: loss {lk} vs {lg}"
            );
            for (k, (a, b)) in gk.iter().zip(&gg).enumerate() {
                let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
                assert!(scale > 0.0, "{what}: parameter {k} gets no gradient");
                let worst = a.iter().zip(b).fold(0f32, |m, (p, q)| m.max((p - q).abs()));
                assert!(
                    worst <= 1e-4 * scale,
                    "{what}: parameter {k}: {worst} of {scale}"
                );
            }
        }
    }
}

#[test]
fn training_steps_on_the_gpu_lower_the_loss_as_on_the_cpu() {
    let (gpu, g) = fit_steps(DeviceKind::Gpu, 6);
    let (cpu, c) = fit_steps(DeviceKind::Cpu, 6);
    assert!(gpu[5] < gpu[0], "the loss did not fall on the GPU: {gpu:?}");
    for (a, b) in gpu.iter().zip(&cpu) {
        assert!(
            (a - b).abs() < 1e-2 * b.abs().max(1.0),
            "{gpu:?} vs {cpu:?}"
        );
    }
    let (wg, wc) = (&g.readout.w, &c.readout.w);
    let diff = wg
        .iter()
        .zip(wc)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(
        diff < 1e-2,
        "readout weights differ by {diff} after 6 steps"
    );
}

#[test]
fn train_bench_runs_on_the_gpu_device() {
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
    assert_eq!(
        (v["batch"].as_u64(), v["steps"].as_u64()),
        (Some(8), Some(2))
    );
    assert!(v["clips_per_second"].as_f64().unwrap().is_finite());
}

#[test]
fn classify_decides_the_same_on_the_gpu_and_the_cpu() {
    let run = |device: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_spikeword"))
            .args(["classify", "assets/clips", "--json", "--device", device])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .map(|v| {
                (
                    v["label"].as_str().unwrap().to_string(),
                    v["score"].as_f64().unwrap(),
                )
            })
            .collect::<Vec<_>>()
    };
    let (gpu, cpu) = (run("gpu"), run("cpu"));
    assert_eq!(gpu.len(), 10);
    for ((lg, sg), (lc, sc)) in gpu.iter().zip(&cpu) {
        assert_eq!(lg, lc);
        assert!((sg - sc).abs() < 1e-2, "{sg} vs {sc}");
    }
}
