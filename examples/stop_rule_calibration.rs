//! Measures the SVI stop rule on the example models' ELBO traces: how often it stops before the
//! fit has reached its plateau (a false stop) and how long after reaching it it stops (delay).
//!
//!     cargo run --release --example stop_rule_calibration [SEEDS]
//!
//! Each model is fitted for 20,000 steps without stopping, per seed. The plateau is the mean
//! ELBO of the last 2,000 steps; the fit has reached it at the first step where the mean of the
//! previous 200 estimates is within 1 nat of it. The rules are pure functions of the trace, so
//! they are replayed on it: the stop rule (`vi::infer::StopRule`) and, for comparison, the
//! relative-change rule it replaced.

use std::path::Path;

use vi::infer::stop::{RelativeRule, StopRule};
use vi::infer::{self, FitOptions};
use vi::LoadOptions;

const STEPS: usize = 20_000;
const TOL: f64 = 1e-4;

fn main() {
    let seeds: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(10);
    println!("| model | rule | stops | false stops | median delay (steps) | max delay |");
    println!("|---|---|---|---|---|---|");
    for model in ["eight_schools", "logreg", "linreg"] {
        let loaded = vi::load(
            Path::new(&format!("models/{model}.vi")),
            &LoadOptions {
                require_data: true,
                ..LoadOptions::default()
            },
        )
        .expect("the example models load");
        let mut results: [(usize, usize, Vec<i64>); 2] = [(0, 0, Vec::new()), (0, 0, Vec::new())];
        for seed in 0..seeds {
            let mut opts = FitOptions::from_settings(&loaded.model.settings, &loaded.model);
            opts.method = vi::infer::MethodChoice::Svi;
            opts.seed = seed;
            opts.steps = Some(STEPS);
            // A tolerance of −1 can never be met: the whole trace is recorded.
            opts.tol = Some(-1.0);
            opts.diagnostic_draws = 0;
            let out = infer::fit(&loaded, &opts, &mut |_| {}).expect("fits");
            let t = &out.elbo_trace;
            let plateau = t[t.len() - 2000..].iter().sum::<f64>() / 2000.0;
            let reached = (200..t.len())
                .find(|&i| t[i - 200..i].iter().sum::<f64>() / 200.0 >= plateau - 1.0)
                .unwrap_or(t.len());
            let mut new = StopRule::new(TOL);
            let mut old = RelativeRule::new(TOL);
            let stops = [
                t.iter().position(|e| new.update(*e)).map(|i| i + 1),
                t.iter().position(|e| old.update(*e)).map(|i| i + 1),
            ];
            for (r, stop) in results.iter_mut().zip(stops) {
                if let Some(at) = stop {
                    r.0 += 1;
                    if at < reached {
                        r.1 += 1;
                    }
                    r.2.push(at as i64 - reached as i64);
                }
            }
        }
        for (name, r) in ["windowed test (vi)", "relative change"]
            .iter()
            .zip(results.iter_mut())
        {
            r.2.sort();
            let median = r.2.get(r.2.len() / 2).map_or("—".into(), |d| d.to_string());
            let max = r.2.last().map_or("—".into(), |d| d.to_string());
            println!(
                "| {model} | {name} | {}/{seeds} | {}/{} | {median} | {max} |",
                r.0, r.1, r.0
            );
        }
    }
}
