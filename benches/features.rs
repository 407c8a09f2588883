//! Log-mel throughput, offline and streaming (frames per second of CPU).
//! Run: cargo bench --bench features

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use spikeword::{FeatureConfig, StreamingMel, load_wav, log_mel};

fn clip() -> Vec<f32> {
    load_wav(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/yes.wav"),
        16000,
    )
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let cfg = FeatureConfig::default();
    let x = clip();
    let frames = cfg.n_frames(x.len()) as u64;
    let mut g = c.benchmark_group("logmel");
    g.throughput(Throughput::Elements(frames));
    g.bench_function("offline_1s", |b| {
        b.iter(|| log_mel(std::hint::black_box(&x), &cfg))
    });
    g.bench_function("streaming_1s_in_160_sample_chunks", |b| {
        b.iter(|| {
            let mut s = StreamingMel::new(&cfg);
            let mut n = 0;
            for ch in x.chunks(160) {
                s.push(ch, |_| n += 1);
            }
            n
        })
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
