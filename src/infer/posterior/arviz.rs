//! A saved fit's draws as ArviZ's InferenceData groups, for `vinf sample --format zarr`:
//! `posterior` (one chain), `posterior_predictive`, `log_likelihood` and `observed_data`,
//! with ArviZ's names for the axes (`chain`, `draw`, `NAME_dim_K`), so that an observed
//! array, its replicates and its log-likelihood share their observation axes.

use serde_json::{json, Map, Value as Json};

use super::loo::PointwiseLogLik;
use super::sample::Drawn;
use crate::store::zarr::{Array, Group, Values};
use crate::store::NamedTensor;

fn axis_names(name: &str, shape: &[usize]) -> Vec<String> {
    (0..shape.len()).map(|k| format!("{name}_dim_{k}")).collect()
}

/// A variable of `n` draws (draw-major, each of `shape`) on the `chain` and `draw` axes.
fn drawn_array(name: &str, shape: &[usize], values: Vec<f64>, n: usize, axes: Vec<String>) -> Array {
    let mut dims = vec!["chain".to_string(), "draw".to_string()];
    dims.extend(axes);
    let mut full = vec![1, n];
    full.extend_from_slice(shape);
    Array {
        name: name.to_string(),
        dims,
        shape: full,
        values: Values::F64(values),
    }
}

/// The `chain` and `draw` coordinates.
fn coordinates(n: usize) -> [Array; 2] {
    [
        Array {
            name: "chain".into(),
            dims: vec!["chain".into()],
            shape: vec![1],
            values: Values::I64(vec![0]),
        },
        Array {
            name: "draw".into(),
            dims: vec!["draw".into()],
            shape: vec![n],
            values: Values::I64((0..n as i64).collect()),
        },
    ]
}

/// The attributes every group carries, as ArviZ writes them.
pub fn attributes(method: &str) -> Map<String, Json> {
    let Json::Object(m) = json!({
        "inference_library": "vinf",
        "inference_library_version": env!("CARGO_PKG_VERSION"),
        "method": method,
    }) else {
        unreachable!("an object")
    };
    m
}

/// A variable name as a store key: letters, digits and `_` (an observed transformation's
/// log-likelihood is labelled `observation K`).
fn key(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The groups of `n` draws (`draws` from [`super::sample::draw`]), the observed data, and the
/// pointwise log-likelihood where the model has one (at its own `n` draws of q: PSIS-LOO reads
/// the log-likelihood alone, so it need not share the posterior's draws).
pub fn groups(
    draws: &[Drawn],
    n: usize,
    observed: &[NamedTensor],
    log_lik: Option<&PointwiseLogLik>,
    method: &str,
) -> Vec<Group> {
    let observed_axes = |name: &str, shape: &[usize]| -> Vec<String> {
        match observed.iter().find(|o| o.name == name) {
            Some(o) if o.shape == shape => axis_names(name, shape),
            _ => axis_names(&format!("{name}_rep"), shape),
        }
    };
    let group = |name: &str, arrays: Vec<Array>| Group {
        name: name.to_string(),
        attrs: attributes(method),
        arrays,
    };
    let mut posterior: Vec<Array> = coordinates(n).into();
    let mut predictive: Vec<Array> = coordinates(n).into();
    for d in draws {
        if d.kind == "predictive" {
            let axes = observed_axes(&d.name, &d.shape);
            predictive.push(drawn_array(&key(&d.name), &d.shape, d.values.clone(), n, axes));
        } else {
            let axes = axis_names(&d.name, &d.shape);
            posterior.push(drawn_array(&key(&d.name), &d.shape, d.values.clone(), n, axes));
        }
    }
    let mut out = vec![group("posterior", posterior)];
    if predictive.len() > 2 {
        out.push(group("posterior_predictive", predictive));
    }
    if let Some(ll) = log_lik {
        // Columns `y[i]` of one observed variable, stacked on its observation axis.
        let mut vars: Vec<(String, Vec<&Vec<f64>>)> = Vec::new();
        for (name, col) in ll.names.iter().zip(&ll.columns) {
            let var = name.split('[').next().unwrap_or(name).to_string();
            match vars.iter_mut().find(|(v, _)| *v == var) {
                Some((_, cols)) => cols.push(col),
                None => vars.push((var, vec![col])),
            }
        }
        let mut arrays: Vec<Array> = coordinates(n).into();
        for (var, cols) in vars {
            let m = cols.len();
            let values: Vec<f64> = (0..n).flat_map(|d| cols.iter().map(move |c| c[d])).collect();
            let (shape, axes) = match observed.iter().find(|o| o.name == var) {
                Some(o) if o.values.len() == m => (o.shape.clone(), axis_names(&var, &o.shape)),
                _ => (vec![m], axis_names(&format!("{}_obs", key(&var)), &[m])),
            };
            arrays.push(drawn_array(&key(&var), &shape, values, n, axes));
        }
        out.push(group("log_likelihood", arrays));
    }
    if !observed.is_empty() {
        let arrays = observed
            .iter()
            .map(|o| Array {
                name: key(&o.name),
                dims: axis_names(&o.name, &o.shape),
                shape: o.shape.clone(),
                values: Values::F64(o.values.clone()),
            })
            .collect();
        out.push(group("observed_data", arrays));
    }
    out
}
