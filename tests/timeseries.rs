//! Recurrences on real and simulated series: GARCH(1,1) (posteriordb's reference draws),
//! ARMA(1,1) and stochastic volatility (NUTS references, `models/timeseries/reference.py`),
//! each written with `scan` and fitted at default settings: every reported mean within 0.5
//! reference sd.

mod common;

use std::path::Path;

use common::summary;
use vi::infer::FitOutput;

fn fit(model: &str) -> FitOutput {
    common::fit(&common::load(model))
}

/// Worst |mean - reference mean| / reference sd over `names` (scalars).
fn worst_error(out: &FitOutput, reference: &str, key: &str, names: &[&str]) -> f64 {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(reference);
    let refs: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    names
        .iter()
        .map(|n| {
            let r = &refs[key]["params"][n];
            let (m, s) = (r["mean"].as_f64().unwrap(), r["sd"].as_f64().unwrap());
            let err = (summary(out, n).mean[0] - m).abs() / s;
            eprintln!(
                "{key} {n}: {:.4} vs {m:.4} ± {s:.4} ({err:.2} sd)",
                summary(out, n).mean[0]
            );
            err
        })
        .fold(0.0, f64::max)
}

#[test]
fn garch11_volatility_recursion() {
    let out = fit("models/posteriordb/garch11.vi");
    let worst = worst_error(
        &out,
        "models/posteriordb/reference.json",
        "garch-garch11",
        &["mu", "alpha0", "alpha1", "beta1"],
    );
    assert!(worst < 0.5, "a mean {worst:.2} reference sds off");
}

#[test]
fn arma11_moving_average_errors() {
    let out = fit("models/timeseries/arma11.vi");
    let worst = worst_error(
        &out,
        "models/timeseries/reference.json",
        "arma11",
        &["mu", "phi", "theta", "sigma"],
    );
    assert!(worst < 0.5, "a mean {worst:.2} reference sds off");
}

/// A latent random walk of 100 log-volatilities built by a scan from its innovations.
#[test]
fn stochastic_volatility_latent_random_walk() {
    let out = fit("models/timeseries/stochastic_volatility.vi");
    let worst = worst_error(
        &out,
        "models/timeseries/reference.json",
        "stochastic_volatility",
        &["mu", "phi", "sigma"],
    );
    assert!(worst < 0.5, "a mean {worst:.2} reference sds off");
    assert_eq!(summary(&out, "h").shape, [100]);
}
