//! Resuming a fit: what a checkpoint records of the command that started it, and reading that
//! record back into the same command.

use std::path::{Path, PathBuf};

use vi::diag::{Diagnostic, Diagnostics};
use vi::infer::checkpoint::Checkpoint;

/// What a checkpoint records of the command that started its fit, to resume it.
#[derive(serde::Serialize, serde::Deserialize)]
struct RunRecord {
    /// The working folder, against which the arguments' paths are read.
    cwd: PathBuf,
    /// The arguments after `vinf fit`.
    args: Vec<String>,
    /// The model's text, to refuse resuming with an edited model.
    model: String,
}

/// The record of this process's `vinf fit` command, for its checkpoints.
pub fn this_command(model: &Path) -> String {
    serde_json::to_string(&RunRecord {
        cwd: std::env::current_dir().unwrap_or_default(),
        args: std::env::args_os()
            .skip(2)
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
        model: std::fs::read_to_string(model).unwrap_or_default(),
    })
    .expect("JSON of plain values")
}

/// A fit to resume: its checkpoint, the arguments that started it (after `vinf fit`), and its
/// output folder.
pub struct Resumed {
    pub checkpoint: Checkpoint,
    pub args: Vec<String>,
    pub dir: PathBuf,
}

/// The checkpoint in `dir` and the arguments of the fit it belongs to, read against the folder
/// that fit ran in (the process moves there).
pub fn resume_from(model: &Path, dir: &Path) -> Result<Resumed, Diagnostics> {
    let bad = |msg: String, help: &str| {
        Diagnostics::from(Diagnostic::new("vi::resume", msg).help(help.to_string()))
    };
    let dir =
        std::path::absolute(dir).map_err(|e| bad(format!("cannot read `{}`: {e}", dir.display()), ""))?;
    let ck = Checkpoint::load(&dir.join(vi::infer::checkpoint::FILE)).map_err(Diagnostics::from)?;
    let record: RunRecord = serde_json::from_str(&ck.record).map_err(|e| {
        bad(
            format!(
                "the checkpoint in `{}` does not say how its fit was started: {e}",
                dir.display()
            ),
            "fit the model afresh",
        )
    })?;
    let text = std::fs::read_to_string(model).map_err(|e| {
        bad(
            format!("cannot read `{}`: {e}", model.display()),
            "check the path",
        )
    })?;
    if text != record.model {
        return Err(bad(
            format!(
                "`{}` is not the model the checkpoint in `{}` was fitted with",
                model.display(),
                dir.display()
            ),
            "the model changed since the fit started: resume with the model as it was, or fit it afresh",
        ));
    }
    std::env::set_current_dir(&record.cwd).map_err(|e| {
        bad(
            format!("cannot go to `{}`, where the fit ran: {e}", record.cwd.display()),
            "resume on the machine and in the folder tree the fit started in",
        )
    })?;
    Ok(Resumed {
        checkpoint: ck,
        args: record.args,
        dir,
    })
}
