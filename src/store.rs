//! Named tensors on disk: safetensors files, Zarr stores (`zarr`) and atomic writes.
//!
//! Below everything that saves (the fit's outputs, checkpoints, draws): it knows files and
//! tensors, nothing of models or engines, and must never import `infer`, `report` or `backend`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::diag::Diagnostic;

pub mod zarr;

/// A named tensor to report or save.
#[derive(Clone, Debug)]
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub values: Vec<f64>,
}

pub fn io_error(path: &Path, e: impl std::fmt::Display) -> Diagnostic {
    Diagnostic::new("vi::io::output", format!("cannot write `{}`", path.display()))
        .help(format!("{e}; choose another folder with `--out DIR`"))
}

/// Write a file atomically: to a temporary name, then renamed into place. A file already at
/// `path` is replaced only if vinf wrote it (see [`claim`]): no command overwrites a user's file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Diagnostic> {
    use std::io::Write;
    claim(path)?;
    let tmp = temporary(path);
    let mut file = std::fs::File::create(&tmp).map_err(|e| io_error(path, e))?;
    // On disk before the rename, so that a crash leaves the old file or the new one.
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_error(path, e));
    }
    Ok(())
}

/// The record, in each folder vinf writes into, of the names it wrote there: one per line.
pub const RECORD: &str = ".vinf-outputs";

/// A hidden name beside `path`, unique to this process, to build a file or folder under before
/// it is renamed into place (never a name a user's file could have by chance).
pub fn temporary(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.{}.vinf-tmp", std::process::id()))
}

/// Make `path` vinf's to write: free (nothing there, or an empty folder), or named in its
/// folder's record. A path held by anything else is refused with a diagnostic naming it; a
/// free one is recorded before it is written, so that a later run may replace it.
pub fn claim(path: &Path) -> Result<(), Diagnostic> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Err(io_error(path, "not a file name"));
    };
    let mut record = read_record(&dir);
    if record.is_empty() && fitted_before_records(&dir) {
        // Adopt what an older vinf wrote here, once: its outputs become recorded ones.
        record.extend(
            OUTPUTS_BEFORE_RECORDS
                .iter()
                .filter(|n| dir.join(n).exists())
                .map(|n| n.to_string()),
        );
    }
    if record.contains(&name) {
        return write_record(&dir, &record);
    }
    let held = match std::fs::symlink_metadata(path) {
        Err(_) => None,
        Ok(m) if m.is_dir() => std::fs::read_dir(path)
            .map_err(|e| io_error(path, e))?
            .next()
            .is_some()
            .then_some("a folder that is not empty"),
        Ok(_) => Some("a file"),
    };
    if let Some(what) = held {
        return Err(Diagnostic::new(
            "vi::io::not_ours",
            format!("`{}` is {what} that vinf did not write", path.display()),
        )
        .help(format!(
            "vinf never replaces what it did not write (it keeps a record of its own outputs in `{}`): move it away, or write elsewhere with `--out`",
            dir.join(RECORD).display()
        )));
    }
    record.insert(name);
    // A folder asked for (`--out a/b/c`) is made: making one destroys nothing.
    std::fs::create_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
    write_record(&dir, &record)
}

/// Write `dir`'s record (atomically), unless it already says exactly that.
fn write_record(dir: &Path, record: &std::collections::BTreeSet<String>) -> Result<(), Diagnostic> {
    let text: String = record.iter().map(|n| format!("{n}\n")).collect();
    let file = dir.join(RECORD);
    if std::fs::read_to_string(&file).is_ok_and(|t| t == text) {
        return Ok(());
    }
    let tmp = temporary(&file);
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, &file))
        .map_err(|e| io_error(&file, e))
}

/// What a fit folder held before vinf kept records: files it writes by these names.
const OUTPUTS_BEFORE_RECORDS: &[&str] = &[
    "summary.json",
    "elbo.csv",
    "elbo.svg",
    "posterior.svg",
    "densities.svg",
    "epochs.csv",
    "params.safetensors",
    "checkpoint.safetensors",
    "samples.csv",
    "samples.zarr",
    "eval.json",
    "loo.json",
    "reconstructions.png",
    "samples.png",
    "manifold.png",
];

/// Whether `dir` is a fit folder of a vinf from before the records: no record, and a
/// `params.safetensors` whose metadata names the model and method a fit saves. Its outputs by
/// [`OUTPUTS_BEFORE_RECORDS`]' names are then vinf's; anything else there stays the user's.
fn fitted_before_records(dir: &Path) -> bool {
    if dir.join(RECORD).exists() {
        return false;
    }
    let Ok(bytes) = std::fs::read(dir.join("params.safetensors")) else {
        return false;
    };
    safetensors::SafeTensors::read_metadata(&bytes).is_ok_and(|(_, meta)| {
        meta.metadata()
            .as_ref()
            .is_some_and(|m| m.contains_key("model") && m.contains_key("method"))
    })
}

fn read_record(dir: &Path) -> std::collections::BTreeSet<String> {
    std::fs::read_to_string(dir.join(RECORD))
        .map(|t| t.lines().filter(|l| !l.is_empty()).map(String::from).collect())
        .unwrap_or_default()
}

/// Every learned tensor as f64 (params prefixed `param.`), with the metadata.
pub fn safetensors_bytes(
    state: &[NamedTensor],
    params: &[NamedTensor],
    meta: std::collections::HashMap<String, String>,
) -> Result<Vec<u8>, Diagnostic> {
    use safetensors::tensor::{Dtype, TensorView};
    let mut bufs: BTreeMap<String, (Vec<usize>, Vec<u8>)> = BTreeMap::new();
    for t in state {
        bufs.insert(
            t.name.clone(),
            (
                t.shape.clone(),
                t.values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ),
        );
    }
    for p in params {
        bufs.insert(
            format!("param.{}", p.name),
            (
                p.shape.clone(),
                p.values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ),
        );
    }
    let views: Vec<(String, TensorView)> = bufs
        .iter()
        .map(|(k, (shape, bytes))| {
            (
                k.clone(),
                TensorView::new(Dtype::F64, shape.clone(), bytes).expect("sizes agree"),
            )
        })
        .collect();
    safetensors::serialize(views, Some(meta)).map_err(|e| {
        Diagnostic::new("vi::io::output", "cannot encode params.safetensors").help(e.to_string())
    })
}

/// Read tensors back from a params.safetensors file, with its metadata.
pub fn read_safetensors(
    path: &Path,
) -> Result<(Vec<NamedTensor>, std::collections::HashMap<String, String>), Diagnostic> {
    let bytes = std::fs::read(path).map_err(|e| {
        Diagnostic::new("vi::io::input", format!("cannot read `{}`", path.display()))
            .help(format!("{e}; `--from` names the folder a `vinf fit` wrote"))
    })?;
    let meta = safetensors::SafeTensors::read_metadata(&bytes)
        .ok()
        .and_then(|(_, m)| m.metadata().clone())
        .unwrap_or_default();
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| {
        Diagnostic::new(
            "vi::io::input",
            format!("`{}` is not a safetensors file", path.display()),
        )
        .help(e.to_string())
    })?;
    let mut out = Vec::new();
    for (name, view) in st.tensors() {
        let data = view.data();
        let values: Vec<f64> = match view.dtype() {
            safetensors::Dtype::F64 => data
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect(),
            safetensors::Dtype::F32 => data
                .chunks_exact(4)
                .map(|c| f64::from(f32::from_le_bytes(c.try_into().expect("4 bytes"))))
                .collect(),
            other => {
                return Err(
                    Diagnostic::new("vi::io::input", format!("tensor `{name}` has dtype {other:?}"))
                        .help("vi writes f64 tensors; was this file written by vi?"),
                )
            }
        };
        out.push(NamedTensor {
            name,
            shape: view.shape().to_vec(),
            values,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((out, meta))
}
