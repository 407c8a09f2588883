//! Training checkpoints, one directory per epoch: `RUN/checkpoints/epoch-NNNN/` holds the
//! model at the end of the epoch (with its progress record), the optimiser state and the
//! best-on-validation model so far. All three are written into a fresh temporary
//! directory and only then renamed into place, so a kill at any moment leaves the last
//! complete epoch and never a model of one epoch with the optimiser state of another.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::model::Model;

const MODEL: &str = "model.safetensors";
const OPTIMIZER: &str = "optimizer.bpk";
const BEST: &str = "best.safetensors";
const PREFIX: &str = "epoch-";

/// The checkpoints of one run directory.
pub struct Checkpoints {
    dir: PathBuf,
}

/// What one checkpoint holds.
pub struct Checkpoint {
    pub model: Model,
    pub optimizer: Vec<u8>,
    pub best: Model,
}

impl Checkpoints {
    pub fn new(run_dir: &Path) -> Self {
        Checkpoints {
            dir: run_dir.join("checkpoints"),
        }
    }

    /// The newest complete checkpoint's directory (a directory only gets its
    /// `epoch-NNNN` name once complete).
    pub fn latest(&self) -> Result<Option<PathBuf>> {
        Ok(self.epochs()?.pop().map(|(_, p)| p))
    }

    /// Reads a checkpoint directory.
    pub fn load(dir: &Path) -> Result<Checkpoint> {
        let optimizer = std::fs::read(dir.join(OPTIMIZER))
            .with_context(|| format!("reading {}", dir.join(OPTIMIZER).display()))?;
        Ok(Checkpoint {
            model: Model::load(&dir.join(MODEL))?,
            optimizer,
            best: Model::load(&dir.join(BEST))?,
        })
    }

    /// Writes the checkpoint of `epoch` as one unit, then removes older ones.
    pub fn save(&self, epoch: usize, model: &Model, optimizer: &[u8], best: &Model) -> Result<()> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let tmp = self
            .dir
            .join(format!(".partial-{epoch:04}-{}", std::process::id()));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp)?;
        }
        std::fs::create_dir(&tmp)?;
        model.save(&tmp.join(MODEL))?;
        best.save(&tmp.join(BEST))?;
        crate::util::atomic_write(&tmp.join(OPTIMIZER), optimizer)?;
        sync_dir(&tmp)?;
        let done = self.dir.join(format!("{PREFIX}{epoch:04}"));
        if done.exists() {
            std::fs::remove_dir_all(&done)?;
        }
        std::fs::rename(&tmp, &done)
            .with_context(|| format!("renaming {} into place", tmp.display()))?;
        sync_dir(&self.dir)?;
        self.prune(epoch)
    }

    /// Complete checkpoints by epoch, oldest first.
    fn epochs(&self) -> Result<Vec<(usize, PathBuf)>> {
        if !self.dir.is_dir() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.dir)? {
            let p = e?.path();
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            if let Some(n) = name.strip_prefix(PREFIX).and_then(|n| n.parse().ok()) {
                out.push((n, p));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Removes checkpoints older than `epoch` and partial ones a killed run left.
    fn prune(&self, epoch: usize) -> Result<()> {
        for (n, p) in self.epochs()? {
            if n < epoch {
                std::fs::remove_dir_all(&p)?;
            }
        }
        for e in std::fs::read_dir(&self.dir)? {
            let p = e?.path();
            if p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(".partial-"))
            {
                std::fs::remove_dir_all(&p)?;
            }
        }
        Ok(())
    }
}

/// Makes a directory's entries (new files, a rename) durable.
fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}
