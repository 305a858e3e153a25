//! What a running fit shows: the method and reasons before it starts, then a progress bar with
//! the running ELBO, the rate and the time left to the step limit on a terminal (plain lines
//! otherwise), restarts and escalations labelled, one line per epoch.

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use vi::infer::Progress;
use vi::report::narrate::Line;

use super::outln;

/// One epoch: the training ELBO in total over `rows` and per row as rate + distortion, then
/// the held-out ELBO per row.
fn epoch_line(e: &vi::infer::epoch::EpochReport, rows: Option<usize>) -> String {
    let width = e.epochs.to_string().len();
    let total = rows.map_or(String::new(), |n| {
        format!("{:.1} total, ", e.train.elbo * n as f64)
    });
    let mut line = format!(
        "epoch {:>width$}/{}  ELBO {total}{:.3} per row (rate {:.3}, distortion {:.3})",
        e.epoch, e.epochs, e.train.elbo, e.train.rate, e.train.distortion
    );
    if let Some(h) = &e.heldout {
        line += &format!(
            "  held-out {:.3} per row (rate {:.3}, distortion {:.3})",
            h.elbo, h.rate, h.distortion
        );
    }
    for (name, v) in &e.terms {
        line += &format!("  {name} {v:.3}");
    }
    if let Some(c) = &e.samples {
        line += &format!("  draws vary {:.2}", c.diversity);
        if let Some(k) = &c.classes {
            let shares: Vec<String> = k.shares.iter().map(|s| format!("{:.0}", 100.0 * s)).collect();
            line += &format!(
                "  confident {:.2}, classes % [{}] (entropy {:.2} of {:.2})",
                k.confidence,
                shares.join(" "),
                k.entropy,
                (k.shares.len() as f64).ln()
            );
        }
    }
    line + &format!("  {:.2} s", e.seconds)
}

/// The bar's rate, as `1234/s`.
fn per_second(state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write) {
    let _ = write!(w, "{:.0}/s", state.per_sec());
}

/// Seconds as `1:05` or `1:02:05`.
fn clock(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// The stage of a fit that the bar is showing: a restart, or the richer fit `auto` escalated to.
fn stage_prefix(stage: &Option<String>) -> String {
    stage.as_ref().map_or(String::new(), |s| format!("{s}  "))
}

pub struct Reporter {
    /// Whether stderr is a terminal: then each stage's steps show as a bar.
    terminal: bool,
    /// The current stage's bar, from its first step (nothing is drawn before the steps start).
    bar: Option<ProgressBar>,
    /// When the current stage's steps began, for the rate and the time left on plain lines.
    began: Instant,
    stage: Option<String>,
    /// The last step seen: (step, unit, ELBO), for the line that closes a restart.
    last: Option<(usize, &'static str, f64)>,
    /// A minibatched model's training rows: its step ELBO is a total over them.
    rows: Option<usize>,
    /// The stage's first step (a resumed fit starts past 1), for the rate.
    first: Option<usize>,
}

/// An ELBO with its unit: a minibatched model's is a total over its rows, shown per row too.
fn elbo_text(elbo: f64, rows: Option<usize>) -> String {
    match rows {
        Some(n) => format!("{elbo:.1} total ({:.3} per row)", elbo / n as f64),
        None => format!("{elbo:.4}"),
    }
}

impl Reporter {
    pub fn new() -> Reporter {
        Reporter {
            terminal: std::io::stderr().is_terminal(),
            bar: None,
            began: Instant::now(),
            stage: None,
            last: None,
            rows: None,
            first: None,
        }
    }

    fn line(&self, text: &str) {
        match &self.bar {
            Some(b) => b.println(text),
            None => eprintln!("{text}"),
        }
    }

    /// Begin a new stage of steps: its bar starts at its first step.
    fn begin(&mut self, stage: Option<String>) {
        self.close_restart();
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
        self.stage = stage;
        self.began = Instant::now();
        self.last = None;
        self.first = None;
    }

    /// A bar for `total` steps, labelled with the stage.
    fn new_bar(&self, total: usize) -> ProgressBar {
        let b = ProgressBar::new(total as u64);
        // The time left is to the step limit: the stop rule may end the fit sooner.
        b.set_style(
            ProgressStyle::with_template(
                "{prefix}{bar:32} {pos}/{len} {rate:.dim} [{elapsed_precise}, ≤{eta} left] ELBO {msg}",
            )
            .expect("a valid template")
            .with_key("rate", per_second),
        );
        b.set_prefix(stage_prefix(&self.stage));
        b
    }

    /// The closing line of a restart: where it ended.
    fn close_restart(&mut self) {
        if let (Some(stage), Some((step, unit, elbo))) = (&self.stage, self.last) {
            if stage.starts_with("restart") {
                self.line(&format!(
                    "{stage}: ELBO {} after {step} {unit}s",
                    elbo_text(elbo, self.rows)
                ));
            }
        }
    }

    pub fn update(&mut self, p: Progress) {
        match p {
            Progress::Plan {
                method,
                reasons,
                rows,
            } => {
                self.rows = rows;
                let print = || {
                    for line in vi::report::narrate::plan(method, &reasons) {
                        let (Line::Out(text) | Line::Warn(text)) = line;
                        outln!("{text}");
                    }
                };
                // On stdout, with the bar (on stderr) out of the way while it prints.
                match &self.bar {
                    Some(b) => b.suspend(print),
                    None => print(),
                }
                self.begin(None);
            }
            Progress::Restart { restart, restarts } => {
                self.begin(Some(format!("restart {restart}/{restarts}")));
            }
            Progress::Escalating {
                from,
                to,
                khat,
                reading,
            } => {
                let name = |s: &str| s.replace('_', "-");
                self.line(&format!(
                    "the {} fit's k-hat is {khat:.2} ({reading}): trying a {} fit",
                    name(from),
                    name(to)
                ));
                self.begin(Some(name(to)));
            }
            Progress::Step {
                step,
                elbo,
                total,
                unit,
            } => {
                self.last = Some((step, unit, elbo));
                let first = *self.first.get_or_insert(step);
                if self.terminal && self.bar.is_none() {
                    let b = self.new_bar(total);
                    // A resumed fit's bar starts where it left off, its rate from here.
                    b.set_position(step.saturating_sub(1) as u64);
                    b.reset_eta();
                    self.bar = Some(b);
                }
                match &self.bar {
                    Some(b) => {
                        b.set_length(total as u64);
                        b.set_position(step as u64);
                        if step % 10 == 0 || step == first {
                            b.set_message(elbo_text(elbo, self.rows));
                        }
                    }
                    None => {
                        if step % (total / 10).max(1) == 0 || step == first {
                            let secs = self.began.elapsed().as_secs_f64();
                            let rate = (step + 1 - first) as f64 / secs.max(1e-9);
                            let left = total.saturating_sub(step) as f64 / rate;
                            eprintln!(
                                "{}{unit} {step}/{total}  ELBO {}  ({rate:.0} {unit}s/s, ≤{} left)",
                                stage_prefix(&self.stage),
                                elbo_text(elbo, self.rows),
                                clock(left)
                            );
                        }
                    }
                }
            }
            Progress::Diverged(_) | Progress::Checkpoint { .. } => {}
            Progress::Backoff { reason, lr, .. } => self.line(&format!(
                "warning: {reason}; back to the last finite parameters, learning rate halved to {lr:e}"
            )),
            Progress::Epoch(e) => {
                self.line(&epoch_line(&e, self.rows));
                if let Some(why) = e.samples.as_ref().and_then(|c| c.collapse()) {
                    self.line(&format!("warning: epoch {}: {why}", e.epoch));
                }
            }
        }
    }

    pub fn finish(&mut self) {
        self.close_restart();
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

/// Rows done of a long per-row computation (`vinf eval`): a bar on a terminal, a line every
/// tenth otherwise.
pub struct RowBar {
    bar: Option<ProgressBar>,
    began: Instant,
    shown: usize,
}

impl RowBar {
    pub fn new() -> RowBar {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::new(0);
            b.set_style(
                ProgressStyle::with_template(
                    "{bar:32} {pos}/{len} rows {rate:.dim} [{elapsed_precise}, {eta} left]",
                )
                .expect("a valid template")
                .with_key("rate", per_second),
            );
            b
        });
        RowBar {
            bar,
            began: Instant::now(),
            shown: 0,
        }
    }

    pub fn update(&mut self, done: usize, total: usize) {
        match &self.bar {
            Some(b) => {
                b.set_length(total as u64);
                b.set_position(done as u64);
            }
            None => {
                // A line at each tenth of the rows reached (the tenth is 10 only at the end).
                let tenth = (done * 10 / total.max(1)).min(10);
                if tenth > self.shown {
                    self.shown = tenth;
                    let secs = self.began.elapsed().as_secs_f64();
                    let left = secs / done.max(1) as f64 * total.saturating_sub(done) as f64;
                    eprintln!("{done}/{total} rows  ({:.1} s, {} left)", secs, clock(left));
                }
            }
        }
    }

    pub fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}
