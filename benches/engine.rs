//! Streaming cost per 10 ms frame (event-driven vs dense, and in integer arithmetic) and
//! offline clip throughput, for the bundled model (all its networks) and for its first
//! network alone.
//! Run: cargo bench --bench engine

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use spikeword::detect::{DetectorConfig, Engine};
use spikeword::features::MelFrame;
use spikeword::snn::{FixedSpec, Mode};
use spikeword::{Model, load_wav};

fn bench(c: &mut Criterion) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let bundled = Model::load(&root.join("models/gsc12.safetensors")).expect("bundled model");
    let one = bundled.member(0).expect("a first network");
    for (tag, model) in [("", &bundled), ("one_network/", &one)] {
        if tag.is_empty() || bundled.net.len() > 1 {
            bench_model(c, tag, model);
        }
    }
}

fn bench_model(c: &mut Criterion, tag: &str, model: &Model) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let x = load_wav(&root.join("assets/demo_words.wav"), 16000).unwrap();
    let frames = model.config.features.n_frames(x.len()) as u64;
    let mut g = c.benchmark_group(format!("{tag}stream"));
    g.throughput(Throughput::Elements(frames));
    g.sample_size(20);
    for (name, mode) in [("event_driven", Mode::Event), ("dense", Mode::Dense)] {
        g.bench_function(format!("{name}_per_frame"), |b| {
            b.iter(|| {
                let mut e = Engine::new(model, DetectorConfig::default()).with_mode(mode);
                let mut n = 0;
                e.push(&x, |_| n += 1);
                n
            })
        });
    }
    // Network only (features precomputed): the SNN's own cost per frame.
    let mut mf = MelFrame::new(&model.config.features);
    let (input, _) = model.encode(&mut mf, &x);
    for (name, mode) in [
        ("network_event_driven", Mode::Event),
        ("network_dense", Mode::Dense),
    ] {
        g.bench_function(format!("{name}_per_frame"), |b| {
            b.iter(|| model.net.forward_clip(&input, mode).0)
        });
    }
    // The same networks with 8-bit weights in integer arithmetic, as a chip runs them.
    let mut q = model.clone();
    q.quantize(8);
    let fixed = q.integer_engine(&FixedSpec::default()).unwrap();
    g.bench_function("network_integer_8bit_per_frame", |b| {
        b.iter(|| fixed.forward_clip(&input).0)
    });
    g.finish();

    let clip = load_wav(&root.join("assets/clips/yes_0.wav"), 16000).unwrap();
    let mut g = c.benchmark_group(format!("{tag}classify"));
    g.throughput(Throughput::Elements(1));
    g.bench_function("one_1s_clip_one_core", |b| {
        b.iter(|| model.classify(&mut mf, &clip).probs)
    });
    g.finish();
}

// No plots: this crate's plotters build has no system fonts (it embeds its own).
criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = bench
}
criterion_main!(benches);
