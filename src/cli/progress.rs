//! A progress bar with the running ELBO on a terminal; plain lines otherwise.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};
use vi::infer::Progress;

/// One epoch, per row: the training ELBO as rate + distortion, then the held-out ELBO.
fn epoch_line(e: &vi::infer::epoch::EpochReport) -> String {
    let width = e.epochs.to_string().len();
    let mut line = format!(
        "epoch {:>width$}/{}  ELBO {:.3} (rate {:.3}, distortion {:.3})",
        e.epoch, e.epochs, e.train.elbo, e.train.rate, e.train.distortion
    );
    if let Some(h) = &e.heldout {
        line += &format!(
            "  held-out {:.3} (rate {:.3}, distortion {:.3})",
            h.elbo, h.rate, h.distortion
        );
    }
    for (name, v) in &e.terms {
        line += &format!("  {name} {v:.3}");
    }
    line + &format!("  {:.2} s", e.seconds)
}

pub struct Reporter {
    bar: Option<ProgressBar>,
    total: usize,
    every: usize,
}

impl Reporter {
    pub fn new(total: usize) -> Reporter {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::new(total as u64);
            b.set_style(
                ProgressStyle::with_template("{bar:40} {pos}/{len} [{elapsed_precise}] ELBO {msg}")
                    .expect("a valid template"),
            );
            b
        });
        Reporter {
            bar,
            total,
            every: (total / 10).max(1),
        }
    }

    pub fn update(&mut self, p: Progress) {
        match p {
            Progress::Step {
                step,
                elbo,
                total,
                unit,
            } => match &self.bar {
                Some(b) => {
                    b.set_length(total as u64);
                    b.set_position(step as u64);
                    if step % 10 == 0 || step == 1 {
                        b.set_message(format!("{elbo:.4}"));
                    }
                }
                None => {
                    self.total = total;
                    self.every = (total / 10).max(1);
                    if step % self.every == 0 || step == 1 {
                        eprintln!("{unit} {step}/{}  ELBO {elbo:.4}", self.total);
                    }
                }
            },
            Progress::Diverged(_) | Progress::Checkpoint { .. } => {}
            Progress::Backoff { reason, lr, .. } => {
                let line = format!(
                    "warning: {reason}; back to the last finite parameters, learning rate halved to {lr:e}"
                );
                match &self.bar {
                    Some(b) => b.println(line),
                    None => eprintln!("{line}"),
                }
            }
            Progress::Epoch(e) => {
                let line = epoch_line(&e);
                match &self.bar {
                    Some(b) => b.println(line),
                    None => eprintln!("{line}"),
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
