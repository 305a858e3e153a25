//! Correlation matrices: `latent L: cholesky_factor_corr[K]` with an `LKJCholesky(eta)` prior.
//!
//! The prior alone must integrate to one and have the LKJ marginals (each off-diagonal
//! correlation is 2 Beta(a, a) − 1 with a = eta − 1 + K/2, so its sd is 1/sqrt(2a + 1)); a wrong
//! density, normaliser or log-Jacobian moves the importance-weighted bound off log Z = 0 or the
//! sd off. Then correlated varying intercepts and slopes (`models/hierarchical/`) against NUTS.

mod common;

use std::path::Path;

use common::{fit, summary};
use vi::infer::FitOutput;

fn fit_source(src: &str) -> FitOutput {
    let loaded = vi::load_str("lkj", "lkj.vi", src, Path::new("."), &vi::LoadOptions::default())
        .unwrap_or_else(|d| panic!("{}", d.render_plain()));
    fit(&loaded)
}

#[test]
fn the_lkj_prior_integrates_to_one_with_its_marginals() {
    for (k, eta) in [(3usize, 2.0f64), (4, 1.0)] {
        let out = fit_source(&format!(
            "latent L: cholesky_factor_corr[{k}]\nL ~ LKJCholesky({eta})\nlet Omega = L @ transpose(L)\n"
        ));
        let trust = out.trust.as_ref().expect("SVI reads its fit");
        // log Z = 0: the IW bound is a lower bound on it, tight when q is close.
        assert!(trust.iw_bound.abs() < 0.05, "K {k}: IW bound {}", trust.iw_bound);
        let a = eta - 1.0 + k as f64 / 2.0;
        let want = 1.0 / (2.0 * a + 1.0).sqrt();
        let omega = summary(&out, "Omega");
        for i in 0..k {
            // L's rows have unit length in every draw.
            assert!((omega.mean[i * k + i] - 1.0).abs() < 1e-9, "a unit diagonal");
            for j in 0..i {
                let (m, sd) = (omega.mean[i * k + j], omega.sd[i * k + j]);
                assert!(m.abs() < 0.06, "K {k}: Omega[{i},{j}] mean {m}");
                assert!(
                    (sd - want).abs() < 0.03,
                    "K {k}: Omega[{i},{j}] sd {sd} vs {want}"
                );
            }
        }
    }
}

#[test]
fn correlated_varying_slopes_match_nuts() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = fit(&common::load("models/hierarchical/varying_slopes.vi"));
    let refs: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("models/hierarchical/reference.json")).unwrap(),
    )
    .unwrap();
    let params = &refs["varying_slopes"]["params"];
    let mut worst: f64 = 0.0;
    for (key, name, at) in [
        ("mu[0]", "mu", 0),
        ("mu[1]", "mu", 1),
        ("tau[0]", "tau", 0),
        ("tau[1]", "tau", 1),
        ("sigma", "sigma", 0),
        ("Omega[0,1]", "Omega", 1),
    ] {
        let (m, s) = (
            params[key]["mean"].as_f64().unwrap(),
            params[key]["sd"].as_f64().unwrap(),
        );
        let got = summary(&out, name).mean[at];
        let err = (got - m).abs() / s;
        eprintln!("{key}: {got:.4} vs {m:.4} ± {s:.4} ({err:.2} sd)");
        worst = worst.max(err);
    }
    assert!(worst < 0.6, "a mean {worst:.2} reference sds off");
}
