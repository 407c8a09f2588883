//! Where the tests find real data, and what they do without it: a test that needs data
//! it cannot find is skipped (with a line saying so), unless `SPIKEWORD_REQUIRE_DATA=1`
//! (set by CI), which turns every such skip into a failure.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The Speech Commands folder: `$SPIKEWORD_DATA`, else a partial copy next to the checkout.
pub fn speech_commands() -> Option<PathBuf> {
    find(
        "SPIKEWORD_DATA",
        "../shared/data/speech_commands",
        "Speech Commands",
    )
}

/// The Free Spoken Digit Dataset: `$SPIKEWORD_FSDD`, else next to the checkout.
pub fn fsdd() -> Option<PathBuf> {
    find("SPIKEWORD_FSDD", "../shared/data/fsdd", "FSDD")
}

fn find(var: &str, beside: &str, what: &str) -> Option<PathBuf> {
    let dir = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(beside));
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("SPIKEWORD_REQUIRE_DATA").as_deref() == Ok("1") {
        panic!(
            "{what} data not found at {} (set {var}); SPIKEWORD_REQUIRE_DATA=1 forbids skipping",
            dir.display()
        );
    }
    eprintln!("skipped: no {what} data at {} (set {var})", dir.display());
    None
}

/// A small folder in the official layout under `dir`: the first `n` clips (by name) of each
/// of `words` from the Speech Commands data (false without the data).
pub fn copy_words(dir: &Path, words: &[&str], n: usize) -> bool {
    let Some(shared) = speech_commands() else {
        return false;
    };
    for w in words {
        let dst = dir.join(w);
        std::fs::create_dir_all(&dst).unwrap();
        let mut files: Vec<PathBuf> = std::fs::read_dir(shared.join(w))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files.iter().take(n) {
            std::fs::copy(f, dst.join(f.file_name().unwrap())).unwrap();
        }
    }
    true
}
