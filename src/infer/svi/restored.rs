//! The after-fit tools' view of SVI: an engine whose learnables are a fit's saved tensors, and
//! what is drawn from it (log importance weights, draws of the guide, per-row bounds).
//!
//! The posterior tools (`trust`, `sample`, `eval`, `pictures`) call these; they use the engine
//! and never the training loop. This file never imports the trainer, its state or the
//! checkpoint, nor `report/`. Its one call into a posterior tool is `psis::iw_bound` (a
//! log-mean-exp of numbers), which belongs below both once the posterior tools have their own
//! room.

use super::engine::Engine;
use super::guide;
use crate::backend::{Array, Session};
use crate::diag::Diagnostic;
use crate::graph::ZipFn;
use crate::infer::{FitOptions, NamedTensor};
use crate::interpret::{expand, zip, Layout, PlateState, Value};
use crate::Loaded;

/// Draws from a fitted guide, restored from its saved tensors: per latent its values laid out
/// `[n, plates..., shape]`, the params in their supports, and the networks' layers.
pub struct Restored {
    pub latents: Vec<Option<Value>>,
    pub params: Vec<Option<Value>>,
    pub nets: Vec<Vec<(Array, Array)>>,
}

/// An engine whose learnables are the saved tensors of a fit.
fn restore<'a>(
    s: &mut Session,
    loaded: &'a Loaded,
    opts: &'a FitOptions,
    state: &[NamedTensor],
) -> Result<Engine<'a>, Diagnostic> {
    let mut eng = Engine::new(loaded, opts, s);
    for e in &mut eng.learn.entries {
        let saved = state.iter().find(|t| t.name == e.name).ok_or_else(|| {
            Diagnostic::new("vi::sample::state", format!("the saved fit has no tensor `{}`", e.name))
                .help("the model changed since it was fitted, or the fit used another guide (`--guide`); fit it again")
        })?;
        if saved.values.len() != e.host.len() {
            return Err(Diagnostic::new(
                "vi::sample::state",
                format!(
                    "tensor `{}` has {} values, the model needs {}",
                    e.name,
                    saved.values.len(),
                    e.host.len()
                ),
            )
            .help("the data or the model changed since the fit; fit it again"));
        }
        e.host.clone_from(&saved.values);
    }
    eng.learn.sync(s);
    Ok(eng)
}

/// Log importance weights log p(x, z) − log q(z) of `n` draws from a saved guide (drawn `chunk`
/// at a time), with each latent's draws (`n` rows of its values).
pub fn log_weights(
    s: &mut Session,
    loaded: &Loaded,
    opts: &FitOptions,
    state: &[NamedTensor],
    n: usize,
    chunk: usize,
) -> Result<(Vec<f64>, Vec<Vec<f64>>), Diagnostic> {
    let mut eng = restore(s, loaded, opts, state)?;
    // The weights need log q at each draw, never the closed-form KL.
    eng.analytic = false;
    let plates = PlateState::whole(&loaded.model);
    s.no_grad();
    let mut log_w = Vec::with_capacity(n);
    let mut draws = vec![Vec::new(); loaded.model.latents.len()];
    let mut done = 0;
    while done < n {
        let m = chunk.min(n - done);
        let (totals, latents) = eng.forward(s, &plates, m, opts.seed ^ 0x7e57 ^ done as u64, 0, true);
        let lw = zip(s, ZipFn::Add, &totals.loglik, &totals.latent);
        let lw = expand(
            s,
            &lw,
            &Layout {
                samples: Some(m),
                plates: vec![],
                shape: vec![],
            },
        );
        log_w.extend(s.values(&lw.arr));
        for (d, v) in draws.iter_mut().zip(latents) {
            if let Some(v) = v {
                d.extend(s.values(&v.arr));
            }
        }
        done += m;
    }
    Ok((log_w, draws))
}

/// Restore a fit's tensors by name and draw `n` samples from its guide, every plate whole.
pub fn draw_guide(
    s: &mut Session,
    loaded: &Loaded,
    opts: &FitOptions,
    state: &[NamedTensor],
    n: usize,
) -> Result<Restored, Diagnostic> {
    draw_guide_at(s, loaded, opts, state, n, &PlateState::whole(&loaded.model))
}

/// [`draw_guide`] over chosen rows of each plate.
pub fn draw_guide_at(
    s: &mut Session,
    loaded: &Loaded,
    opts: &FitOptions,
    state: &[NamedTensor],
    n: usize,
    plates: &[PlateState],
) -> Result<Restored, Diagnostic> {
    let mut eng = restore(s, loaded, opts, state)?;
    eng.only_plate = None;
    s.no_grad();
    let (_, latents) = eng.forward(s, plates, n, opts.seed ^ 0x005a_3b1e, 0, false);
    let params = eng.param_values(s).into_iter().map(Some).collect();
    let nets = guide::net_arrays(s, &eng.learn, &eng.nets);
    Ok(Restored {
        latents,
        params,
        nets,
    })
}

/// Importance-weighted estimates of log p(x_n) for chosen rows of a model's batched plate:
/// log (1/k) Σ_i p(x_n, z_i) / q(z_i | x_n), z_i ~ q(z | x_n), k draws per row (Burda et al.'s
/// IWAE bound; k = 1 is the ELBO), each with the mean of its k log weights (an ELBO estimate).
/// Rows are taken `chunk` at a time.
#[allow(clippy::too_many_arguments)]
pub fn iw_per_row(
    s: &mut Session,
    loaded: &Loaded,
    opts: &FitOptions,
    state: &[NamedTensor],
    rows: &[usize],
    k: usize,
    chunk: usize,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<(f64, f64)>, Diagnostic> {
    let model = &loaded.model;
    let Some((plate, _, _)) = crate::infer::epoch::batched_plate(model) else {
        return Err(Diagnostic::new(
            "vi::eval::no_plate",
            "the model has no batched plate of rows to evaluate",
        )
        .help("`vinf eval` estimates log p(x) per row of a `for n in 1..N batch M` plate"));
    };
    if let Some(site) = model
        .sites
        .iter()
        .find(|st| st.plates.contains(&plate) && st.plates.len() > 1)
    {
        return Err(Diagnostic::new(
            "vi::eval::nested",
            "`vinf eval` needs every statement of the row plate directly inside it",
        )
        .primary(site.span, "inside a nested plate")
        .help("the per-row estimate sums each row's statements; nested plates are not supported yet")
        .with_source(&model.source));
    }
    let mut eng = restore(s, loaded, opts, state)?;
    eng.analytic = false;
    eng.only_plate = Some(plate);
    eng.per_row = true;
    s.no_grad();
    let mut out = Vec::with_capacity(rows.len());
    for part in rows.chunks(chunk.max(1)) {
        let plates = PlateState::rows_of(model, plate, part);
        let (t, _) = eng.forward(s, &plates, k, opts.seed ^ 0x1aa5 ^ part[0] as u64, 0, true);
        let lw = zip(s, ZipFn::Add, &t.loglik, &t.latent);
        let lay = Layout {
            samples: Some(k),
            plates: vec![(plate, part.len())],
            shape: vec![],
        };
        let lw = expand(s, &lw, &lay);
        let lw = s.values(&lw.arr);
        // [k, rows] → per row: log-mean-exp over the k draws.
        for r in 0..part.len() {
            let col: Vec<f64> = (0..k).map(|i| lw[i * part.len() + r]).collect();
            out.push((
                crate::infer::psis::iw_bound(&col),
                col.iter().sum::<f64>() / k as f64,
            ));
        }
        progress(out.len());
    }
    Ok(out)
}
