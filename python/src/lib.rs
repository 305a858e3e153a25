//! `vinf._vinf`: the native half of the Python module. It loads and fits models through the
//! `vi` library with the GIL released, and hands back plain values (JSON text, flat lists with
//! shapes) that `vinf/__init__.py` turns into numpy arrays, pandas frames and ArviZ data.
//!
//! Ctrl-C: while a fit runs, the progress callback takes the GIL a few times a second to let
//! Python see pending signals; a KeyboardInterrupt stops the fit after its current step (as the
//! command line's first Ctrl-C does), and is raised once the fit has returned.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyKeyboardInterrupt, PyValueError};
use pyo3::prelude::*;

use vi::data::Binding;
use vi::diag::Diagnostics;
use vi::infer::{FitOptions, FitOutput, NamedTensor};
use vi::settings::{Settings, Value};
use vi::{LoadOptions, Loaded};

create_exception!(
    _vinf,
    ModelError,
    PyException,
    "A problem with a model or its data."
);

/// A ModelError carrying the rendered diagnostics (its message) and each as JSON (`.diagnostics`
/// on the Python side).
fn model_error(py: Python<'_>, d: &Diagnostics) -> PyErr {
    let text = d.render(false);
    let json: Vec<String> = d.iter().map(|x| x.to_json().to_string()).collect();
    let err = ModelError::new_err(text);
    let _ = err.value(py).setattr("diagnostics_json", json);
    err
}

/// One `data=` entry as `vinf/__init__.py` passes it: (name, file, label, stand_in): the file
/// holds the data (a path the user gave, or a temporary .npy of an array, a stand-in), and the
/// label (`data['y']`) is what diagnostics call it.
type DataArg = (String, String, String, bool);

/// Load model text and bind `data`. `path` names the model file and places its relative data
/// files; model text given as such (`path` None) is shown as `<model text>`, its `from` files
/// relative to the current directory.
fn load(
    source: &str,
    path: Option<&str>,
    data: &[DataArg],
    require_data: bool,
) -> Result<Loaded, Diagnostics> {
    let bindings = data
        .iter()
        .map(|(name, file, label, stand_in)| Binding::labelled(name, file, label, *stand_in))
        .collect();
    let opts = LoadOptions {
        bindings,
        use_defaults: true,
        require_data,
    };
    let Some(path) = path else {
        return vi::load_str("model", "<model text>", source, Path::new(""), &opts);
    };
    let p = Path::new(path);
    let name = p
        .file_stem()
        .map_or("model".into(), |s| s.to_string_lossy().into_owned());
    let base = p.parent().map(Path::to_path_buf).unwrap_or_default();
    vi::load_str(&name, path, source, &base, &opts)
}

/// Check a model: its `vinf check` summary, or a ModelError.
#[pyfunction]
#[pyo3(signature = (source, path, data))]
fn check(
    py: Python<'_>,
    source: &str,
    path: Option<&str>,
    data: Vec<DataArg>,
) -> PyResult<(String, Vec<String>)> {
    let loaded = py
        .allow_threads(|| load(source, path, &data, false))
        .map_err(|d| model_error(py, &d))?;
    let warnings = loaded.model.warnings.iter().map(|w| w.render_plain()).collect();
    Ok((vi::report::model_summary(&loaded.model, &loaded.data), warnings))
}

/// A fitted model.
#[pyclass(module = "vinf._vinf")]
struct NativeFit {
    loaded: Loaded,
    out: FitOutput,
    interrupted: bool,
    checkpoint_dir: PathBuf,
}

impl Drop for NativeFit {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.checkpoint_dir);
    }
}

/// Fit a model with `settings` (key, value) overriding its `fit { }` block.
#[pyfunction]
#[pyo3(signature = (source, path, data, settings))]
fn fit(
    py: Python<'_>,
    source: &str,
    path: Option<&str>,
    data: Vec<DataArg>,
    settings: Vec<(String, PyObject)>,
) -> PyResult<NativeFit> {
    let mut loaded = py
        .allow_threads(|| load(source, path, &data, true))
        .map_err(|d| model_error(py, &d))?;
    for (key, value) in settings {
        let v = match value.extract::<f64>(py) {
            Ok(x) if !value.bind(py).is_instance_of::<pyo3::types::PyBool>() => Value::Number(x),
            _ => Value::Word(value.bind(py).str()?.to_string().to_lowercase().replace('-', "_")),
        };
        let spec = Settings::spec(&key)
            .ok_or_else(|| PyValueError::new_err(format!("`{key}` is not a fit setting")))?;
        let v =
            Settings::check_flag(spec.key, v).map_err(|e| PyValueError::new_err(format!("{key}: {e}")))?;
        if spec.key == "steps" {
            loaded.model.settings.remove("epochs");
        }
        loaded.model.settings.set(spec.key, v);
    }
    let mut opts = FitOptions::from_settings(&loaded.model.settings, &loaded.model);
    let interrupt = Arc::new(AtomicBool::new(false));
    let checkpoint_dir =
        std::env::temp_dir().join(format!("vinf-py-{}-{:p}", std::process::id(), &interrupt));
    opts.checkpoint = Some(vi::infer::checkpoint::Plan {
        dir: checkpoint_dir.clone(),
        every: usize::MAX,
        record: String::new(),
        interrupt: interrupt.clone(),
        resume: None,
        extend: false,
        // The plan is here for Ctrl-C; a notebook's fit leaves nothing on disk.
        keep_final: false,
    });
    let flag = interrupt.clone();
    let result = py.allow_threads(move || {
        let mut last = Instant::now();
        vi::infer::fit(&loaded, &opts, &mut |_| {
            if last.elapsed() > Duration::from_millis(100) {
                last = Instant::now();
                if Python::with_gil(|py| py.check_signals()).is_err() {
                    flag.store(true, Ordering::SeqCst);
                }
            }
        })
        .map(|out| (loaded, out))
    });
    let (loaded, out) = result.map_err(|d| model_error(py, &d))?;
    let interrupted = interrupt.load(Ordering::SeqCst);
    if interrupted {
        let _ = std::fs::remove_dir_all(&checkpoint_dir);
        return Err(PyKeyboardInterrupt::new_err("the fit was interrupted"));
    }
    Ok(NativeFit {
        loaded,
        out,
        interrupted,
        checkpoint_dir,
    })
}

/// (name, kind, shape, values flat, draw-major).
type Drawn = (String, String, Vec<usize>, Vec<f64>);

#[pymethods]
impl NativeFit {
    /// summary.json's text.
    fn summary_json(&self) -> String {
        vi::report::fit::summary_text(&self.loaded.model, &self.out)
    }

    /// What `vinf fit` prints of the fit: how each latent was fitted, the status line, warnings.
    fn report(&self) -> Vec<String> {
        vi::report::narrate::narration(&self.out, "")
            .into_iter()
            .map(|l| match l {
                vi::report::narrate::Line::Out(t) | vi::report::narrate::Line::Warn(t) => t,
            })
            .collect()
    }

    fn interrupted(&self) -> bool {
        self.interrupted
    }

    /// `n` draws: latents, derived quantities, posterior predictive replicates.
    fn draws(&self, py: Python<'_>, n: usize, seed: u64) -> PyResult<Vec<Drawn>> {
        let meta = self.meta();
        let draws = py
            .allow_threads(|| vi::infer::sample::draw(&self.loaded, &self.out.state, &meta, n, seed))
            .map_err(|d| model_error(py, &d))?;
        Ok(draws
            .into_iter()
            .map(|d| (d.name, d.kind.to_string(), d.shape, d.values))
            .collect())
    }

    /// The pointwise log-likelihood at `n` draws of q: (observation names, one column of `n`
    /// values per observation).
    fn log_likelihood(&self, py: Python<'_>, n: usize, seed: u64) -> PyResult<(Vec<String>, Vec<Vec<f64>>)> {
        let meta = self.meta();
        let p = py
            .allow_threads(|| {
                vi::infer::posterior::loo::pointwise_log_lik(&self.loaded, &self.out.state, &meta, n, seed)
            })
            .map_err(|d| model_error(py, &d))?;
        Ok((p.names, p.columns))
    }

    /// The observed data: (name, shape, values) of every data array a `~` observes.
    fn observed(&self) -> Vec<(String, Vec<usize>, Vec<f64>)> {
        vi::infer::sample::observed(&self.loaded)
            .into_iter()
            .map(|t| (t.name, t.shape, t.values))
            .collect()
    }

    /// The fitted tensors (variational parameters, params, weights): name, shape, values.
    fn tensors(&self) -> Vec<(String, Vec<usize>, Vec<f64>)> {
        self.out
            .state
            .iter()
            .map(|t: &NamedTensor| (t.name.clone(), t.shape.clone(), t.values.clone()))
            .collect()
    }
}

impl NativeFit {
    fn meta(&self) -> HashMap<String, String> {
        self.out.saved_metadata(&self.loaded.model.name)
    }
}

#[pymodule]
fn _vinf(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(check, m)?)?;
    m.add_function(wrap_pyfunction!(fit, m)?)?;
    m.add_class::<NativeFit>()?;
    m.add("ModelError", m.py().get_type::<ModelError>())?;
    Ok(())
}
