//! Families beyond the conjugate ones, fitted end to end: a negative-binomial regression on
//! counts drawn from known parameters (Stan's `neg_binomial_2_log`) recovers them, and the
//! heavy-tailed HalfStudentT, Weibull and Gumbel fit as priors and likelihoods.

use std::path::Path;
use std::process::Command;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Gamma, Poisson};

fn fit(name: &str, model: &str, csv: &str) -> serde_json::Value {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("families_{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("d.csv"), csv).unwrap();
    std::fs::write(dir.join("m.vi"), model).unwrap();
    let out = dir.join("fit");
    let o = Command::new(env!("CARGO_BIN_EXE_vinf"))
        .args([
            "fit",
            dir.join("m.vi").to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap()
}

fn stat(s: &serde_json::Value, name: &str, what: &str, k: usize) -> f64 {
    s["latents"][name][what][k].as_f64().unwrap()
}

#[test]
fn a_negative_binomial_regression_recovers_its_parameters() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let (b0, b1, phi) = (1.0, 0.5, 3.0);
    let mut csv = String::from("x,y\n");
    for _ in 0..400 {
        let x: f64 = rng.gen::<f64>() * 4.0 - 2.0;
        let mu = (b0 + b1 * x).exp();
        let rate = Gamma::new(phi, mu / phi).unwrap().sample(&mut rng);
        let y: f64 = Poisson::new(rate).map_or(0.0, |d| d.sample(&mut rng));
        csv += &format!("{x},{y}\n");
    }
    let s = fit(
        "negbin",
        "data x: real[N] from \"d.csv\"\ndata y: count[N] from \"d.csv\"\n\
         b ~ Normal(0, 5) [2]\nphi ~ HalfStudentT(3, 5)\n\
         for i in 1..N {\n    y[i] ~ NegativeBinomial(log_mu = b[0] + b[1] * x[i], phi = phi)\n}\n",
        &csv,
    );
    for (k, truth) in [b0, b1].iter().enumerate() {
        let (m, sd) = (stat(&s, "b", "mean", k), stat(&s, "b", "sd", k));
        assert!((m - truth).abs() < 3.0 * sd, "b[{k}] = {m} ± {sd}, truth {truth}");
    }
    let (m, sd) = (stat(&s, "phi", "mean", 0), stat(&s, "phi", "sd", 0));
    assert!((m - phi).abs() < 3.0 * sd, "phi = {m} ± {sd}, truth {phi}");
}

#[test]
fn weibull_and_gumbel_likelihoods_find_their_parameters() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let w = rand_distr::Weibull::new(2.0, 1.5).unwrap();
    let g = rand_distr::Gumbel::new(0.5, 2.0).unwrap();
    let mut csv = String::from("a,b\n");
    for _ in 0..500 {
        csv += &format!("{},{}\n", w.sample(&mut rng), g.sample(&mut rng));
    }
    let s = fit(
        "weibull_gumbel",
        "data a: positive[N] from \"d.csv\"\ndata b: real[N] from \"d.csv\"\n\
         k ~ HalfNormal(5)\nlam ~ HalfNormal(5)\nloc ~ Normal(0, 10)\nscale ~ HalfNormal(5)\n\
         for i in 1..N {\n    a[i] ~ Weibull(k, lam)\n    b[i] ~ Gumbel(loc, scale)\n}\n",
        &csv,
    );
    for (name, truth) in [("k", 1.5), ("lam", 2.0), ("loc", 0.5), ("scale", 2.0)] {
        let (m, sd) = (stat(&s, name, "mean", 0), stat(&s, name, "sd", 0));
        assert!((m - truth).abs() < 3.0 * sd, "{name} = {m} ± {sd}, truth {truth}");
    }
}
