//! What a finished fit says to the person who ran it: the method and why, how it ended, how far
//! to trust it, the posterior table and the notes, as lines for the command line to print.
//!
//! It builds text and prints nothing; the command line decides where each line goes.

use crate::infer::{psis, FitOutput, Guide, Method, Status};

/// A line of the account, for standard output or standard error.
#[derive(Clone, Debug, PartialEq)]
pub enum Line {
    Out(String),
    Warn(String),
}

/// The account of a fit, up to (not including) the files written: method, reasons, the
/// status line, the diagnostics and their warning, the table, the notes. `stalled_hint` ends
/// the warning of a fit that stopped at its step limit (the command line adds its exit code).
pub fn narration(out: &FitOutput, stalled_hint: &str) -> Vec<Line> {
    let mut lines = plan(out.method, &out.reasons);
    lines.extend(outcome(out, stalled_hint));
    lines
}

/// The method and why each latent is fitted as it is: what the command line prints before
/// fitting starts.
pub fn plan(method: Method, reasons: &[String]) -> Vec<Line> {
    let mut lines = vec![Line::Out(format!("method: {}", method.name()))];
    lines.extend(reasons.iter().map(|r| Line::Out(format!("  {r}"))));
    lines
}

/// [`narration`] after the plan: how the fit ended and what it found.
pub fn outcome(out: &FitOutput, stalled_hint: &str) -> Vec<Line> {
    let mut lines = Vec::new();
    let unit = if out.method == Method::Cavi {
        "sweeps"
    } else if out.method == Method::Pathfinder {
        "L-BFGS iterations"
    } else {
        "steps"
    };
    // After an escalation the progress showed two fits: say which one the count is of.
    let unit = match &out.escalation {
        Some(e) => {
            let (other, n) = if e.kept == e.from {
                (e.to, e.to_iterations)
            } else {
                (e.from, e.from_iterations)
            };
            let other_unit = if other == Method::Pathfinder.name() {
                "L-BFGS iterations"
            } else {
                "steps"
            };
            format!(
                "{unit} of the {} fit kept (the {} fit ran {n} {other_unit})",
                e.kept.replace('_', "-"),
                other.replace('_', "-")
            )
        }
        None => unit.to_string(),
    };
    lines.push(Line::Out(match (out.epochs.last(), out.rows) {
        // A total over the training rows, and per row, as the epochs were reported.
        (Some(e), _) => format!(
            "{} after {} {unit} ({} epochs) in {:.2} s; ELBO {}{:.3} per row{}",
            out.status.name(),
            out.iterations,
            out.epochs.len(),
            out.time_s,
            out.rows.map_or(String::new(), |n| format!(
                "{:.1} total over {n} rows, ",
                e.train.elbo * n as f64
            )),
            e.train.elbo,
            e.heldout
                .map_or(String::new(), |h| format!(", held-out {:.3} per row", h.elbo))
        ),
        (None, Some(n)) => format!(
            "{} after {} {unit} in {:.2} s; ELBO {:.1} total over {n} rows ({:.3} per row)",
            out.status.name(),
            out.iterations,
            out.time_s,
            out.elbo,
            out.elbo / n as f64
        ),
        (None, None) => format!(
            "{} after {} {unit} in {:.2} s; ELBO {:.4}",
            out.status.name(),
            out.iterations,
            out.time_s,
            out.elbo
        ),
    }));
    if let Some(level) = out.trust_level() {
        let last = lines.last_mut().expect("the status line");
        if let Line::Out(l) = last {
            l.push_str(&format!("; trust: {level}"));
        }
    }
    if let Some(e) = &out.escalation {
        lines.push(Line::Out(format!(
            "the {} fit's k-hat did not read good, so a {} fit was tried: importance-weighted bounds {:.4} ± {:.4} and {:.4} ± {:.4}; kept the {} fit{}",
            e.from.replace('_', "-"),
            e.to.replace('_', "-"),
            e.from_iw_bound,
            e.from_iw_bound_se,
            e.to_iw_bound,
            e.to_iw_bound_se,
            e.kept.replace('_', "-"),
            if e.kept == e.from {
                " (the richer fit must be better beyond twice the combined standard error on the ELBO or the bound, and not worse on the other)"
            } else {
                ""
            }
        )));
    }
    if out.status == Status::Stalled {
        lines.push(Line::Warn(format!(
            "warning: the ELBO was still rising at the step limit; raise `--steps` (or `--lr`), \
             or pass `--tol 0` to run a fixed number of steps{stalled_hint}"
        )));
    }
    if let Some(t) = &out.trust {
        // Fewer draws than asked where each evaluates the whole of a large data set.
        let of = if t.draws < t.asked {
            format!(" of the {} asked, each evaluating every row", t.asked)
        } else {
            String::new()
        };
        lines.push(Line::Out(format!(
            "fit diagnostics ({} draws from q{of}): k-hat {:.2} ({}); ELBO {:.4} ± {:.4} at the final parameters, \
             importance-weighted bound {:.4} (gap {:.4})",
            t.draws,
            t.khat,
            t.reading,
            t.elbo,
            t.elbo_se,
            t.iw_bound,
            t.iw_bound - t.elbo
        )));
        if t.reading == "poor" || t.reading == "unreliable" {
            // Never propose what already ran: a full-rank fit, kept or tried by `auto`.
            let full_rank = Guide::FullRank.name();
            let full_rank_ran =
                out.guide == Some(full_rank) || out.escalation.as_ref().is_some_and(|e| e.to == full_rank);
            let advice = if out.method == Method::Cavi {
                "the mean-field factorisation misses dependence between latents that the posterior has"
            } else if full_rank_ran {
                "a full-rank guide was fitted too: try more steps, or a better parameterisation"
            } else {
                "try `--guide full-rank`, more steps, or a better parameterisation"
            };
            lines.push(Line::Warn(format!(
                "warning: k-hat {:.2} is above {:.2}: q is a poor importance proposal for this posterior, so its \
                 means and intervals may be off ({advice}); compare the `psis mean` column",
                t.khat,
                psis::threshold(t.draws)
            )));
        }
    }
    if !out.latents.is_empty() || !out.params.is_empty() {
        lines.push(Line::Out(String::new()));
        if let Some(level) = out.trust_level() {
            let why = if level == "poor" {
                " (do not rely on these numbers: see the warnings above)"
            } else {
                ""
            };
            lines.push(Line::Out(format!("posterior (trust: {level}){why}")));
        }
        let table = super::fit::posterior_table(out);
        lines.push(Line::Out(table.strip_suffix('\n').unwrap_or(&table).to_string()));
    }
    lines.extend(out.notes.iter().map(|n| Line::Out(format!("note: {n}"))));
    lines
}
