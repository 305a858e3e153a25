//! `latent NAME: TYPE` declarations: constrained supports (`ordered` breaks a mixture's label
//! symmetry), priors restricted to the declared support (a Normal prior on a `positive` latent
//! is the half-normal), and latents with no prior statement, flat on their support as in Stan.

use std::path::{Path, PathBuf};
use std::process::Command;

fn fit(name: &str, model: &str, csv: &str, extra: &[&str]) -> serde_json::Value {
    let dir: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("latent_decl_{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("d.csv"), csv).unwrap();
    std::fs::write(dir.join("m.vi"), model).unwrap();
    let out = dir.join("fit");
    let mut args: Vec<String> = vec![
        "fit".into(),
        dir.join("m.vi").to_str().unwrap().into(),
        "--out".into(),
        out.to_str().unwrap().into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let o = Command::new(env!("CARGO_BIN_EXE_vinf"))
        .args(&args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap()
}

fn stat(s: &serde_json::Value, name: &str, what: &str, k: usize) -> f64 {
    s["latents"][name][what][k].as_f64().unwrap()
}

/// 300 draws from 0.3 N(-2, 0.7) + 0.7 N(3, 1.2).
fn mixture_csv() -> String {
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut uniform = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    let mut csv = String::from("y\n");
    for _ in 0..300 {
        let (u1, u2, pick) = (uniform(), uniform(), uniform());
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        csv += &format!("{}\n", if pick < 0.3 { -2.0 + 0.7 * z } else { 3.0 + 1.2 * z });
    }
    csv
}

#[test]
fn an_ordered_location_identifies_a_mixture() {
    let s = fit(
        "ordered",
        "data y: real[N] from \"d.csv\"\nlatent mu: ordered[2]\nw ~ Dirichlet([1, 1])\nmu ~ Normal(0, 5)\n\
         sigma ~ HalfNormal(2) [2]\nfor n in 1..N {\n    y[n] ~ Mixture(w, Normal(mu, sigma))\n}\n",
        &mixture_csv(),
        &[],
    );
    // The order is the declared one: no relabelling needed.
    assert!(
        (stat(&s, "mu", "mean", 0) + 2.0).abs() < 0.3,
        "{}",
        s["latents"]["mu"]
    );
    assert!(
        (stat(&s, "mu", "mean", 1) - 3.0).abs() < 0.3,
        "{}",
        s["latents"]["mu"]
    );
    assert!((stat(&s, "w", "mean", 0) - 0.3).abs() < 0.07);
    assert_eq!(s["trust"], "good");
}

/// A success probability declared `unit` with no prior statement is uniform: the posterior
/// after k successes in n trials is Beta(1 + k, 1 + n − k).
#[test]
fn a_latent_without_a_prior_is_flat_on_its_support() {
    let s = fit(
        "flat_unit",
        "data k: count[M] from \"d.csv\"\nlatent p: unit\nfor m in 1..M {\n    k[m] ~ Binomial(10, p)\n}\n",
        "k\n3\n4\n2\n5\n",
        &[],
    );
    let (a, b): (f64, f64) = (1.0 + 14.0, 1.0 + 26.0);
    let (mean, sd) = (a / (a + b), (a * b / ((a + b).powi(2) * (a + b + 1.0))).sqrt());
    assert!(
        (stat(&s, "p", "mean", 0) - mean).abs() < 0.1 * sd,
        "{} vs {mean}",
        stat(&s, "p", "mean", 0)
    );
}

/// `latent s: positive` with `s ~ Normal(0, 2)` is the half-normal prior: the same posterior as
/// `s ~ HalfNormal(2)`.
#[test]
fn a_prior_is_restricted_to_the_declared_support() {
    let csv = "y\n0.9\n-1.4\n2.2\n0.3\n-0.6\n1.7\n";
    let truncated = fit(
        "truncated",
        "data y: real[N] from \"d.csv\"\nlatent s: positive\ns ~ Normal(0, 2)\nfor n in 1..N {\n    y[n] ~ Normal(0, s)\n}\n",
        csv,
        &["--seed", "4"],
    );
    let half = fit(
        "half",
        "data y: real[N] from \"d.csv\"\ns ~ HalfNormal(2)\nfor n in 1..N {\n    y[n] ~ Normal(0, s)\n}\n",
        csv,
        &["--seed", "4"],
    );
    let (a, b) = (stat(&truncated, "s", "mean", 0), stat(&half, "s", "mean", 0));
    assert!((a - b).abs() < 0.03, "{a} vs {b}");
}
