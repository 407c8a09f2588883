//! Temporary: dumps offline and in-context probabilities for one model (ensemble probe).
use spikeword::audio::fit_length;
use spikeword::detect::{DetectorConfig, Engine};
use spikeword::features::MelFrame;
use spikeword::train::{Dataset, Split, model_split_rule};
use spikeword::{Model, load_wav};
use std::path::{Path, PathBuf};

fn main() -> anyhow::Result<()> {
    let path = PathBuf::from(std::env::args().nth(1).unwrap());
    let m = Model::load(&path)?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/speech_commands");
    let ds = Dataset::scan(&root, &model_split_rule(&m))?;
    let split = if std::env::args().nth(2).as_deref() == Some("validation") {
        Split::Validation
    } else {
        Split::Test
    };
    let clips: Vec<_> = ds.split(split).collect();
    let noise_files = ds.noise_for(split);
    let noise = load_wav(&noise_files[0], 16000)?;
    let noise_ctx: Vec<f32> = noise.iter().cycle().take(8000).map(|v| v * 0.2).collect();
    let speech_ctx = fit_length(&load_wav(&clips[3].path, 16000)?, 16000);
    let contexts = [vec![0.0; 8000], noise_ctx, speech_ctx];
    let mut mf = MelFrame::new(&m.config.features);
    for c in &clips {
        let x = fit_length(&load_wav(&c.path, 16000)?, 16000);
        let p = m.classify(&mut mf, &x).probs;
        let mut line = format!("{}\t{}", c.path.display(), c.word);
        let fmt = |v: &[f32]| {
            v.iter()
                .map(|x| format!("{x:.6}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        line += &format!("\t{}", fmt(&p));
        for ctx in &contexts {
            let mut e = Engine::new(&m, DetectorConfig::default());
            e.push(ctx, |_| {});
            e.push(&x, |_| {});
            line += &format!("\t{}", fmt(e.smoothed()));
        }
        println!("{line}");
    }
    Ok(())
}
