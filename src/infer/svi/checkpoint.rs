//! Checkpoints of a running SVI fit, so that an interrupted run loses nothing.
//!
//! A checkpoint holds everything the loop carries from one step to the next: the learnables,
//! the tail average, each optimiser's moments and step count, the stop rule's windows, the
//! epoch accounting, the ELBO trace, and the minibatch shuffler (its orders and its random
//! stream's position). Noise is derived from the seed and the step, so a resumed run draws
//! exactly what the uninterrupted one would have. The file is one safetensors file (tensors in
//! f64, the rest as JSON in its metadata), written to a temporary name and renamed into place,
//! so a kill at any moment leaves the previous checkpoint or the new one, never half of either.
//!
//! What the run was (the command line, its folder, the model's text) is recorded by the caller
//! as an opaque string, `record`, that comes back on resume.
//!
//! This file is the format only: the trainer's state goes into a [`Checkpoint`] and comes back
//! out of one in `state.rs`. Never imports the engine, the trainer, `report/` or the posterior
//! tools.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::optim::OptimizerState;
use crate::diag::Diagnostic;
use crate::infer::epoch::{Accumulator, EpochReport};
use crate::infer::stop::StopRule;
use crate::store::NamedTensor;

/// The file name inside the output folder.
pub const FILE: &str = "checkpoint.safetensors";
/// Steps between checkpoints unless told otherwise.
pub const DEFAULT_EVERY: usize = 1000;
const FORMAT: u32 = 1;

/// How a fit checkpoints, and whether it resumes.
#[derive(Clone, Debug)]
pub struct Plan {
    pub dir: PathBuf,
    /// Steps between checkpoints.
    pub every: usize,
    /// What the run was, for resuming it (the caller's format).
    pub record: String,
    /// Set (by a Ctrl-C handler) to stop at the next step with a checkpoint.
    pub interrupt: Arc<AtomicBool>,
    /// The checkpoint to continue from.
    pub resume: Option<Checkpoint>,
    /// Whether the resumed fit is extended past where it ended: its stop rule starts afresh,
    /// so that it stops again only on new evidence.
    pub extend: bool,
    /// Whether the fit's final state is kept (not for the richer fit `auto` escalates to,
    /// which the recorded command would not rebuild).
    pub keep_final: bool,
}

impl Plan {
    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    pub fn interrupted(&self) -> bool {
        self.interrupt.load(Ordering::Relaxed)
    }
}

/// The trainer's state other than its tensors, as the checkpoint's metadata stores it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoopState {
    pub step: usize,
    pub trace: Vec<f64>,
    pub stop: StopRule,
    pub epoch_acc: Accumulator,
    pub epochs: Vec<EpochReport>,
    /// Each optimiser's step count.
    pub optimizer_steps: Vec<u64>,
    /// Per plate: the epoch's shuffled order and the position in it.
    pub orders: Vec<(Vec<usize>, usize)>,
    /// The shuffler's position in its random stream (a u128, as text).
    pub rng_word_pos: String,
    /// Loop seconds before this checkpoint.
    pub loop_s: f64,
    /// Learning-rate halvings so far, and what caused them.
    #[serde(default)]
    pub backoffs: usize,
    #[serde(default)]
    pub backoff_notes: Vec<String>,
    /// How the fit ended (`converged`, `stalled`, `completed`) when this is its final state,
    /// kept so that `--resume DIR --steps N` can extend it; `None` while it runs.
    #[serde(default)]
    pub ended: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Meta {
    format: u32,
    record: String,
    state: LoopState,
}

/// A saved fit in progress.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    pub record: String,
    pub state: LoopState,
    /// Learnables' values, by name.
    pub learn: Vec<NamedTensor>,
    /// The tail average, by learnable name.
    pub average: Vec<NamedTensor>,
    /// Per optimiser, per member: first and second moments.
    pub moments: Vec<Vec<(Vec<f64>, Vec<f64>)>>,
}

impl Checkpoint {
    /// The optimiser states, in order.
    pub fn optimizers(&self) -> Vec<OptimizerState> {
        self.moments
            .iter()
            .zip(&self.state.optimizer_steps)
            .map(|(m, &t)| OptimizerState {
                t,
                moments: m.clone(),
            })
            .collect()
    }

    pub fn save(&self, path: &Path) -> Result<(), Diagnostic> {
        let mut tensors: Vec<NamedTensor> = Vec::new();
        for t in &self.learn {
            tensors.push(named(
                format!("learn/{}", t.name),
                t.shape.clone(),
                t.values.clone(),
            ));
        }
        for t in &self.average {
            tensors.push(named(
                format!("average/{}", t.name),
                t.shape.clone(),
                t.values.clone(),
            ));
        }
        for (g, members) in self.moments.iter().enumerate() {
            for (k, (m, v)) in members.iter().enumerate() {
                tensors.push(named(format!("optim/{g}/{k}/m"), vec![m.len()], m.clone()));
                tensors.push(named(format!("optim/{g}/{k}/v"), vec![v.len()], v.clone()));
            }
        }
        let meta = Meta {
            format: FORMAT,
            record: self.record.clone(),
            state: self.state.clone(),
        };
        let mut map = std::collections::HashMap::new();
        map.insert(
            "vi_checkpoint".to_string(),
            serde_json::to_string(&meta).expect("JSON of plain values"),
        );
        let bytes = crate::store::safetensors_bytes(&tensors, &[], map)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                Diagnostic::new("vi::io", format!("cannot create `{}`: {e}", dir.display()))
                    .help("choose another folder with `--out DIR`")
            })?;
        }
        crate::store::write_atomic(path, &bytes)
    }

    pub fn load(path: &Path) -> Result<Checkpoint, Diagnostic> {
        let bad = |why: String| {
            Diagnostic::new(
                "vi::resume::checkpoint",
                format!("cannot resume from `{}`", path.display()),
            )
            .help(why)
        };
        if !path.exists() {
            return Err(bad(
                "there is no checkpoint in that folder: a gradient fit writes one every `--checkpoint-every` steps, on Ctrl-C and when it ends (CAVI fits, which run in seconds, take none)"
                    .into(),
            ));
        }
        let (tensors, meta) = crate::store::read_safetensors(path)?;
        let text = meta
            .get("vi_checkpoint")
            .ok_or_else(|| bad("the file is not a vi checkpoint".into()))?;
        let meta: Meta =
            serde_json::from_str(text).map_err(|e| bad(format!("its state does not read: {e}")))?;
        if meta.format != FORMAT {
            return Err(bad(format!(
                "it was written in checkpoint format {}, this vi reads {FORMAT}",
                meta.format
            )));
        }
        let mut learn = Vec::new();
        let mut average = Vec::new();
        let groups = meta.state.optimizer_steps.len();
        let mut moments: Vec<Vec<(Vec<f64>, Vec<f64>)>> = vec![Vec::new(); groups];
        for t in tensors {
            let parts: Vec<&str> = t.name.splitn(2, '/').collect();
            match parts.as_slice() {
                ["learn", name] => learn.push(named(name.to_string(), t.shape, t.values)),
                ["average", name] => average.push(named(name.to_string(), t.shape, t.values)),
                ["optim", rest] => {
                    let p: Vec<&str> = rest.split('/').collect();
                    let (Some(g), Some(k)) = (
                        p.first().and_then(|x| x.parse::<usize>().ok()),
                        p.get(1).and_then(|x| x.parse::<usize>().ok()),
                    ) else {
                        return Err(bad(format!("unexpected tensor `{}`", t.name)));
                    };
                    let group = moments
                        .get_mut(g)
                        .ok_or_else(|| bad(format!("tensor `{}` has no optimiser", t.name)))?;
                    if group.len() <= k {
                        group.resize(k + 1, (Vec::new(), Vec::new()));
                    }
                    match p.get(2) {
                        Some(&"m") => group[k].0 = t.values,
                        Some(&"v") => group[k].1 = t.values,
                        _ => return Err(bad(format!("unexpected tensor `{}`", t.name))),
                    }
                }
                _ => return Err(bad(format!("unexpected tensor `{}`", t.name))),
            }
        }
        Ok(Checkpoint {
            record: meta.record,
            state: meta.state,
            learn,
            average,
            moments,
        })
    }
}

fn named(name: String, shape: Vec<usize>, values: Vec<f64>) -> NamedTensor {
    NamedTensor { name, shape, values }
}
