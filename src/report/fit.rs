//! What a fit leaves behind: the posterior table on the terminal, and `summary.json`,
//! `elbo.csv`, `elbo.svg` and `params.safetensors` in the output folder.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{json, Map, Value as Json};

use crate::diag::Diagnostic;
use crate::graph::Model;
use crate::infer::epoch::{EpochReport, PerRow};
use crate::infer::{FitOutput, LatentSummary};
use crate::store::{safetensors_bytes, write_atomic};

/// The most rows one latent gets in the terminal table (summary.json has them all).
const ROWS_PER_LATENT: usize = 12;

fn num(x: f64) -> String {
    if x == 0.0 || (x.abs() >= 1e-3 && x.abs() < 1e5) {
        format!("{x:.4}")
    } else {
        format!("{x:.3e}")
    }
}

/// A summary's rows of the posterior table (at most [`ROWS_PER_LATENT`]; a note for the rest):
/// name and index (with `suffix`), mean, the PSIS mean where the table has the column, sd, 5%,
/// 95%.
fn summary_rows(
    l: &crate::infer::LatentSummary,
    suffix: &str,
    corrected: Option<&Vec<f64>>,
    with_psis: bool,
    rows: &mut Vec<Vec<String>>,
    notes: &mut Vec<String>,
) {
    let n = l.mean.len();
    for k in 0..n.min(ROWS_PER_LATENT) {
        let mut row = vec![
            format!("{}{}{suffix}", l.name, crate::infer::index_label(&l.shape, k)),
            num(l.mean[k]),
        ];
        if with_psis {
            row.push(
                corrected
                    .and_then(|m| m.get(k))
                    .map_or(String::new(), |v| num(*v)),
            );
        }
        row.extend([num(l.sd[k]), num(l.q05[k]), num(l.q95[k])]);
        rows.push(row);
    }
    if n > ROWS_PER_LATENT {
        notes.push(format!(
            "{}: {} more elements in summary.json",
            l.name,
            n - ROWS_PER_LATENT
        ));
    }
}

/// The posterior table: name (with index), mean, sd, 5% and 95%.
pub fn posterior_table(out: &FitOutput) -> String {
    // The PSIS-corrected means sit beside q's own, so that a poor k-hat shows where q is off.
    let psis_means = |name: &str| {
        out.trust
            .as_ref()
            .and_then(|t| t.psis_means.iter().find(|(n, _)| n == name))
            .map(|(_, m)| m)
    };
    let with_psis = out.trust.is_some();
    let mut header = vec!["latent", "mean"];
    if with_psis {
        header.push("psis mean");
    }
    header.extend(["sd", "5%", "95%"]);
    let mut rows: Vec<Vec<String>> = vec![header.into_iter().map(String::from).collect()];
    let mut notes = Vec::new();
    for l in out.latents.iter().filter(|l| l.categories.is_none()) {
        summary_rows(l, "", psis_means(&l.name), with_psis, &mut rows, &mut notes);
    }
    let columns = rows[0].len();
    for d in &out.derived {
        summary_rows(d, " (derived)", None, with_psis, &mut rows, &mut notes);
    }
    for p in &out.params {
        for k in 0..p.values.len().min(ROWS_PER_LATENT) {
            let mut row = vec![
                format!("{}{} (param)", p.name, crate::infer::index_label(&p.shape, k)),
                num(p.values[k]),
            ];
            row.resize(columns, String::new());
            rows.push(row);
        }
    }
    let mut s = if rows.len() > 1 {
        render(&rows, &notes)
    } else {
        String::new()
    };
    let categorical: Vec<&LatentSummary> = out.latents.iter().filter(|l| l.categories.is_some()).collect();
    if !categorical.is_empty() {
        if !s.is_empty() {
            s.push('\n');
        }
        s += &category_table(&categorical);
    }
    s
}

/// Categorical latents: each element's most likely category and its probability, and how
/// many elements are nearly certain.
fn category_table(latents: &[&LatentSummary]) -> String {
    let mut rows = vec![["categorical", "most likely", "probability"]
        .map(String::from)
        .to_vec()];
    let mut notes = Vec::new();
    for l in latents {
        let c = l.categories.as_ref().expect("categorical latents");
        for i in 0..c.len().min(ROWS_PER_LATENT) {
            let (j, p) = c.most_likely(i);
            rows.push(vec![
                format!("{}{}", l.name, crate::infer::index_label(&l.shape, i)),
                j.to_string(),
                format!("{p:.4}"),
            ]);
        }
        let sure = (0..c.len()).filter(|&i| c.most_likely(i).1 >= 0.9).count();
        notes.push(format!(
            "{}: {sure} of {} elements have a category of probability ≥ 0.9{}",
            l.name,
            c.len(),
            if c.len() > ROWS_PER_LATENT {
                "; every element's probabilities are in summary.json"
            } else {
                ""
            }
        ));
    }
    render(&rows, &notes)
}

/// Rows (the first a header) as aligned columns, the first left-aligned, then the notes.
fn render(rows: &[Vec<String>], notes: &[String]) -> String {
    let columns = rows[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut s = String::new();
    for (i, r) in rows.iter().enumerate() {
        let _ = write!(s, "  {:<w$}", r[0], w = widths[0]);
        for c in 1..columns {
            let _ = write!(s, "  {:>w$}", r[c], w = widths[c]);
        }
        s = s.trim_end().to_string();
        s.push('\n');
        if i == 0 {
            let total: usize = widths.iter().sum::<usize>() + 2 * columns;
            let _ = writeln!(s, "  {}", "─".repeat(total - 2));
        }
    }
    for n in notes {
        let _ = writeln!(s, "  ({n})");
    }
    s
}

/// Latents with more elements than this are summarised by shape only in summary.json (their
/// variational parameters are all in params.safetensors).
const JSON_ELEMENTS: usize = 100_000;

/// summary.json's text: what `vinf fit` writes, and what the Python module's `Fit` reads.
pub fn summary_text(model: &Model, out: &FitOutput) -> String {
    serde_json::to_string_pretty(&summary_json(model, out)).expect("JSON of plain values")
}

fn summary_json(model: &Model, out: &FitOutput) -> Json {
    let mut latents = Map::new();
    for l in &out.latents {
        let entry = if l.mean.len() <= JSON_ELEMENTS {
            let mut e = latent_json(l);
            if let Some((_, m)) = out
                .trust
                .as_ref()
                .and_then(|t| t.psis_means.iter().find(|(n, _)| *n == l.name))
            {
                e["psis_mean"] = json!(finite_or_null(m));
            }
            e
        } else {
            json!({
                "shape": l.shape,
                "omitted": format!("{} elements; their variational parameters are in params.safetensors", l.mean.len()),
            })
        };
        latents.insert(l.name.clone(), entry);
    }
    let derived: Map<String, Json> = out
        .derived
        .iter()
        .map(|d| (d.name.clone(), latent_json(d)))
        .collect();
    let mut params = Map::new();
    for p in &out.params {
        params.insert(
            p.name.clone(),
            json!({"shape": p.shape, "values": finite_or_null(&p.values)}),
        );
    }
    json!({
        "model": model.name,
        "method": out.method.name(),
        "status": out.status.name(),
        "converged": out.status == crate::infer::Status::Converged,
        "trust": out.trust_level(),
        "gradient_evaluations": out.grad_evals,
        "escalation": out.escalation.as_ref().map(|e| json!({
            "from": e.from, "to": e.to, "kept": e.kept,
            "from_iw_bound": finite(e.from_iw_bound), "to_iw_bound": finite(e.to_iw_bound),
            "from_iw_bound_se": finite(e.from_iw_bound_se), "to_iw_bound_se": finite(e.to_iw_bound_se),
        })),
        "noncentred": out.noncentred,
        "iterations": out.iterations,
        "elbo": finite(out.elbo),
        "rows": out.rows,
        "elbo_per_row": out.rows.map(|n| finite(out.elbo / n as f64)),
        "time_s": out.time_s,
        "loop_time_s": out.loop_s,
        "time_per_iteration_s": if out.iterations > 0 { out.loop_s / out.iterations as f64 } else { 0.0 },
        "reasons": out.reasons,
        "psis_khat": out.trust.as_ref().map(|t| finite(t.khat)),
        "psis_reading": out.trust.as_ref().map(|t| t.reading),
        "iw_bound": out.trust.as_ref().map(|t| finite(t.iw_bound)),
        "elbo_at_final_params": out.trust.as_ref().map(|t| json!({"mean": finite(t.elbo), "se": finite(t.elbo_se)})),
        "diagnostic_draws": out.trust.as_ref().map(|t| t.draws),
        "epochs": out.epochs.iter().map(epoch_json).collect::<Vec<_>>(),
        "latents": latents,
        "derived": derived,
        "params": params,
        "notes": out.notes,
    })
}

fn per_row_json(r: &PerRow) -> Json {
    json!({"elbo": finite(r.elbo), "rate": finite(r.rate), "distortion": finite(r.distortion)})
}

fn epoch_json(e: &EpochReport) -> Json {
    json!({
        "epoch": e.epoch,
        "step": e.step,
        "seconds": e.seconds,
        "train": per_row_json(&e.train),
        "heldout": e.heldout.as_ref().map(per_row_json),
        "terms": e.terms.iter().map(|(n, v)| (n.clone(), finite(*v))).collect::<Map<String, Json>>(),
        "samples": e.samples.as_ref().map(|c| json!({
            "draws": c.draws,
            "diversity": finite(c.diversity),
            "classes": c.classes.as_ref().map(|k| json!({
                "confidence": finite(k.confidence),
                "entropy": finite(k.entropy),
                "shares": k.shares.iter().map(|s| finite(*s)).collect::<Vec<_>>(),
            })),
            "collapse": c.collapse(),
        })),
    })
}

/// epochs.csv: one row per epoch, per-row figures.
fn epochs_csv(out: &FitOutput) -> String {
    let mut csv = String::from(
        "epoch,step,seconds,train_elbo,train_rate,train_distortion,heldout_elbo,heldout_rate,heldout_distortion\n",
    );
    for e in &out.epochs {
        let h = e
            .heldout
            .map_or([f64::NAN; 3], |h| [h.elbo, h.rate, h.distortion]);
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{},{},{},{}",
            e.epoch, e.step, e.seconds, e.train.elbo, e.train.rate, e.train.distortion, h[0], h[1], h[2]
        );
    }
    csv
}

fn finite(x: f64) -> Json {
    if x.is_finite() {
        json!(x)
    } else {
        Json::Null
    }
}

fn finite_or_null(v: &[f64]) -> Vec<Json> {
    v.iter().map(|x| finite(*x)).collect()
}

fn latent_json(l: &LatentSummary) -> Json {
    let mut e = json!({
        "shape": l.shape,
        "mean": finite_or_null(&l.mean),
        "sd": finite_or_null(&l.sd),
        "q05": finite_or_null(&l.q05),
        "q95": finite_or_null(&l.q95),
    });
    // A label's mean is kept for old readers; its probabilities are what to read.
    if let Some(c) = &l.categories {
        let (most, prob): (Vec<usize>, Vec<f64>) = (0..c.len()).map(|i| c.most_likely(i)).unzip();
        e["categories"] = json!(c.k);
        e["most_likely"] = json!(most);
        e["probability"] = json!(finite_or_null(&prob));
        e["probabilities"] = json!(c.probs.chunks(c.k).map(finite_or_null).collect::<Vec<_>>());
    }
    e
}

/// Write summary.json, elbo.csv, elbo.svg, epochs.csv (with epochs) and params.safetensors
/// into `dir`; returns the names written.
pub fn write_outputs(dir: &Path, model: &Model, out: &FitOutput) -> Result<Vec<String>, Diagnostic> {
    std::fs::create_dir_all(dir).map_err(|e| crate::store::io_error(dir, e))?;
    write_atomic(&dir.join("summary.json"), summary_text(model, out).as_bytes())?;
    let mut csv = String::from("iteration,elbo\n");
    for (i, e) in out.elbo_trace.iter().enumerate() {
        let _ = writeln!(csv, "{},{e}", i + 1);
    }
    write_atomic(&dir.join("elbo.csv"), csv.as_bytes())?;
    write_atomic(
        &dir.join("elbo.svg"),
        super::plots::elbo_svg(model, out).as_bytes(),
    )?;
    let mut written: Vec<String> = ["summary.json", "elbo.csv", "elbo.svg"]
        .map(String::from)
        .to_vec();
    for (name, svg) in [
        ("posterior.svg", super::plots::forest_svg(model, out)),
        ("densities.svg", super::plots::densities_svg(model, out)),
    ] {
        if let Some(svg) = svg {
            write_atomic(&dir.join(name), svg.as_bytes())?;
            written.push(name.to_string());
        }
    }
    if !out.epochs.is_empty() {
        write_atomic(&dir.join("epochs.csv"), epochs_csv(out).as_bytes())?;
        written.push("epochs.csv".into());
    }
    let meta = out.saved_metadata(&model.name);
    write_atomic(
        &dir.join("params.safetensors"),
        &safetensors_bytes(&out.state, &out.params, meta)?,
    )?;
    written.push("params.safetensors".into());
    Ok(written)
}
