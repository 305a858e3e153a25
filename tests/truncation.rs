//! Truncated densities, `~ Dist(...) T[lo, hi]`, against exact answers: a truncated prior alone
//! integrates to one (the importance-weighted bound reaches log Z = 0) with scipy's truncated
//! mean and sd, and a Normal likelihood observed only above 0 (a detection limit) against the
//! posterior on a fine grid (`tests/fixtures/truncation/`: 300 draws of Normal(0.5, 2) kept above
//! 0; grid log Z −430.015, mu −0.925 ± 1.136, sigma 2.312 ± 0.369). Without the normaliser
//! the bound would sit hundreds of nats away.

mod common;

use std::path::Path;

use common::summary;
use vi::infer::{FitOutput, Method};

fn fit(src: &str) -> FitOutput {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/truncation");
    let loaded = vi::load_str("t", "t.vi", src, &base, &vi::LoadOptions::default())
        .unwrap_or_else(|d| panic!("{}", d.render_plain()));
    common::fit(&loaded)
}

#[test]
fn a_truncated_prior_is_normalised_with_the_truncated_moments() {
    // (prior, mean, sd): scipy's truncnorm(−½, 1, loc 1, scale 2), and the half-normal.
    for (prior, mean, sd) in [
        ("x ~ Normal(1, 2) T[0, 3]", 1.413_262_436, 0.831_320_057),
        ("x ~ Normal(0, 1) T[0, ]", 0.797_884_561, 0.602_810_274),
        ("x ~ Exponential(2) T[, 1]", 0.343_482_357, 0.262_649_167),
    ] {
        let out = fit(&format!("{prior}\n"));
        let trust = out.trust.as_ref().expect("SVI reads its fit");
        assert!(
            trust.iw_bound.abs() < 0.03,
            "{prior}: IW bound {}",
            trust.iw_bound
        );
        let x = summary(&out, "x");
        assert!(
            (x.mean[0] - mean).abs() < 0.05,
            "{prior}: mean {} vs {mean}",
            x.mean[0]
        );
        assert!((x.sd[0] - sd).abs() < 0.06, "{prior}: sd {} vs {sd}", x.sd[0]);
    }
}

#[test]
fn a_likelihood_truncated_at_a_detection_limit() {
    let out = fit(
        "data y: real[N] from \"y.csv\"\nmu ~ Normal(0, 10)\nsigma ~ HalfNormal(5)\n\
         for i in 1..N {\n    y[i] ~ Normal(mu, sigma) T[0, ]\n}\n",
    );
    let trust = out.trust.as_ref().expect("SVI reads its fit");
    let log_z = -430.015;
    assert!(
        trust.iw_bound < log_z + 0.05 && trust.iw_bound > log_z - 0.3,
        "IW bound {} vs log Z {log_z}",
        trust.iw_bound
    );
    for (name, mean, sd) in [("mu", -0.925, 1.136), ("sigma", 2.312, 0.369)] {
        let got = summary(&out, name).mean[0];
        assert!((got - mean).abs() < 0.5 * sd, "{name}: {got} vs {mean} ± {sd}");
    }
}

/// A truncated likelihood has no conjugate update: the Normal-Normal pair goes to gradients.
#[test]
fn truncation_is_not_conjugate() {
    let out = fit("data y: real[N] from \"y.csv\"\nmu ~ Normal(0, 10)\nfor i in 1..N {\n    y[i] ~ Normal(mu, 2) T[0, ]\n}\n");
    assert_eq!(out.method, Method::Svi);
}
