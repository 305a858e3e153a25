//! CAVI against truth: exact conjugate posteriors, monotone ELBOs, the paper's mixture, and the
//! numpy anchors' figures on identical data.

use std::path::Path;

use vi::infer::{self, FitOptions, FitOutput};
use vi::Loaded;

mod common;

use common::{load, load_text, load_with, tensor as state};

fn fit(loaded: &Loaded, method: &str) -> FitOutput {
    let mut opts = FitOptions::from_settings(&loaded.model.settings, &loaded.model);
    opts.method = method.parse().expect("a method");
    infer::fit(loaded, &opts, &mut |_| {}).unwrap_or_else(|d| panic!("{}", d.render_plain()))
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-300)
}

fn column(path: &str, name: &str) -> Vec<f64> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let k = r.headers().unwrap().iter().position(|h| h == name).unwrap();
    r.records().map(|rec| rec.unwrap()[k].parse().unwrap()).collect()
}

#[test]
fn normal_mean_with_known_variance_is_exact() {
    // mu ~ N(1, 2²); y_i ~ N(mu, 0.5²): the posterior is Normal with these moments.
    let model = r#"
        data x: real[N] from "data/gmm.csv"
        mu ~ Normal(1, 2)
        for i in 1..N {
            x[i] ~ Normal(mu, 0.5)
        }
    "#;
    let out = fit(&load_text(model), "cavi");
    let x = column("models/data/gmm.csv", "x");
    let prec = 1.0 / 4.0 + x.len() as f64 / 0.25;
    let mean = (1.0 / 4.0 + x.iter().sum::<f64>() / 0.25) / prec;
    assert!(
        rel(state(&out, "q.mu.mean")[0], mean) < 1e-6,
        "{} vs {mean}",
        state(&out, "q.mu.mean")[0]
    );
    assert!(rel(state(&out, "q.mu.var")[0], 1.0 / prec) < 1e-6);
}

#[test]
fn gamma_poisson_is_exact() {
    let out = fit(&load("models/poisson_gamma.vi"), "cavi");
    let y = column("models/data/counts.csv", "y");
    let (shape, rate) = (2.0 + y.iter().sum::<f64>(), 1.0 + y.len() as f64);
    assert!(rel(state(&out, "q.lambda.shape")[0], shape) < 1e-6);
    assert!(rel(state(&out, "q.lambda.rate")[0], rate) < 1e-6);
    assert!(rel(out.latents[0].mean[0], shape / rate) < 1e-6);
}

#[test]
fn beta_bernoulli_is_exact() {
    let out = fit(&load("models/beta_bernoulli.vi"), "cavi");
    let y = column("models/data/coin.csv", "y");
    let heads: f64 = y.iter().sum();
    assert!(rel(state(&out, "q.p.a")[0], 1.0 + heads) < 1e-6);
    assert!(rel(state(&out, "q.p.b")[0], 1.0 + y.len() as f64 - heads) < 1e-6);
}

#[test]
fn the_exact_elbo_of_a_one_latent_model_is_the_log_evidence() {
    // Beta–Bernoulli: log p(y) = ln B(1 + h, 1 + t) − ln B(1, 1); mean field is exact here.
    let out = fit(&load("models/beta_bernoulli.vi"), "cavi");
    let y = column("models/data/coin.csv", "y");
    let h: f64 = y.iter().sum();
    let t = y.len() as f64 - h;
    let lb = |a: f64, b: f64| vi::special::lgamma(a) + vi::special::lgamma(b) - vi::special::lgamma(a + b);
    let evidence = lb(1.0 + h, 1.0 + t) - lb(1.0, 1.0);
    assert!(rel(out.elbo, evidence) < 1e-9, "{} vs {evidence}", out.elbo);
}

#[test]
fn the_elbo_never_decreases_on_any_conjugate_example() {
    for m in [
        "gmm",
        "gmm_full",
        "linreg",
        "poisson_gamma",
        "beta_bernoulli",
        "lda",
    ] {
        let out = fit(&load(&format!("models/{m}.vi")), "cavi");
        assert_eq!(out.method, infer::Method::Cavi, "{m}");
        for w in out.elbo_trace.windows(2) {
            assert!(
                w[1] >= w[0] - 1e-9 * w[0].abs(),
                "{m}: ELBO fell from {} to {}",
                w[0],
                w[1]
            );
        }
        assert!(out.elbo.is_finite());
    }
}

#[test]
fn the_mixture_recovers_the_papers_means_and_the_anchor_elbo() {
    // Ganguly & Earp's setting: K = 3, 1000 points per component; truth from the generator.
    let out = fit(&load("models/gmm.vi"), "auto");
    assert_eq!(out.method, infer::Method::Cavi);
    assert_eq!(out.status, infer::Status::Converged);
    assert!(out.iterations <= 100);
    let mut m = out.latents.iter().find(|l| l.name == "mu").unwrap().mean.clone();
    m.sort_by(f64::total_cmp);
    let truth = [
        -7.905_907_583_196_691,
        -4.087_587_087_999_388,
        -0.108_362_786_176_171_95,
    ];
    for (a, b) in m.iter().zip(truth) {
        assert!((a - b).abs() < 0.1, "{m:?}");
    }
    // The numpy anchor's CAVI on the same data ends at −7305.743119.
    assert!(rel(out.elbo, -7_305.743_119) < 1e-6, "{}", out.elbo);
}

#[test]
fn linreg_on_the_anchor_data_matches_the_anchor() {
    let path = "../shared/bench/anchors/data/w2_linreg_seed0.csv";
    if !Path::new(path).exists() {
        eprintln!("skipped: {path} not here");
        return;
    }
    let loaded = load_with("models/linreg.vi", &[path]);
    let out = fit(&loaded, "cavi");
    // RESULTS.md: CAVI ELBO −7228.222134, E[tau] exact 4.06816.
    assert!(rel(out.elbo, -7_228.222_134) < 1e-8, "{}", out.elbo);
    let tau = out.latents.iter().find(|l| l.name == "tau").unwrap().mean[0];
    assert!((tau - 4.068_16).abs() < 1e-4, "{tau}");
}

#[test]
fn lda_recovers_its_topics() {
    let out = fit(&load("models/lda.vi"), "cavi");
    let beta = &out.latents.iter().find(|l| l.name == "beta").unwrap().mean;
    // Each true topic puts 0.24 on four consecutive words; each fitted topic must put most of
    // its mass on one such block, and the three blocks must differ.
    let mut blocks = Vec::new();
    for k in 0..3 {
        let row = &beta[k * 12..(k + 1) * 12];
        let (b, mass) = (0..3)
            .map(|b| (b, row[4 * b..4 * b + 4].iter().sum::<f64>()))
            .max_by(|x, y| x.1.total_cmp(&y.1))
            .unwrap();
        assert!(mass > 0.85, "topic {k}: {row:?}");
        blocks.push(b);
    }
    blocks.sort();
    assert_eq!(blocks, vec![0, 1, 2]);
}

/// LDA's updates cost tokens × topics, whatever the vocabulary: the example corpus declared
/// over 100,000 words (a one-hot pass would build tokens × topics × words, 3 × 10⁹ values).
/// Each topic's Dirichlet then holds exactly its prior plus its expected counts: words never
/// seen keep eta, and the counts over all topics and words add up to the tokens.
#[test]
fn lda_updates_do_not_grow_with_the_vocabulary() {
    let text = std::fs::read_to_string("models/lda.vi")
        .unwrap()
        .replace("const V = 12 ", "const V = 100000 ")
        .replace("restarts = 5", "restarts = 1");
    assert!(text.contains("const V = 100000"));
    let loaded = load_text(&text);
    let start = std::time::Instant::now();
    let out = fit(&loaded, "cavi");
    assert!(out.elbo.is_finite());
    let alpha = state(&out, "q.beta.alpha");
    let (k, v, eta) = (3, 100_000, 0.5);
    assert_eq!(alpha.len(), k * v);
    let tokens = column("models/data/lda.csv", "w").len() as f64;
    let counts: f64 = alpha.iter().map(|a| a - eta).sum();
    assert!(rel(counts, tokens) < 1e-9, "{counts} counts for {tokens} tokens");
    for row in 0..k {
        assert!(alpha[row * v + 12..(row + 1) * v].iter().all(|a| *a == eta));
    }
    assert!(start.elapsed().as_secs() < 120, "took {:?}", start.elapsed());
}

#[test]
fn cavi_on_a_non_conjugate_model_points_at_the_culprit() {
    let loaded = load("models/eight_schools.vi");
    let mut opts = FitOptions::from_settings(&loaded.model.settings, &loaded.model);
    opts.method = vi::infer::MethodChoice::Cavi;
    let err = infer::fit(&loaded, &opts, &mut |_| {}).unwrap_err();
    let text = err.render_plain();
    assert!(err.iter().any(|d| d.code == "vi::cavi::not_conjugate"), "{text}");
    assert!(text.contains("tau"), "{text}");
}

/// Fit an inline model by CAVI, checking that its ELBO never decreases.
fn fit_text(text: &str) -> FitOutput {
    let out = fit(&load_text(text), "cavi");
    for w in out.elbo_trace.windows(2) {
        assert!(
            w[1] >= w[0] - 1e-9 * w[0].abs(),
            "ELBO fell from {} to {}",
            w[0],
            w[1]
        );
    }
    out
}

#[test]
fn inverse_gamma_on_a_normal_variance_is_exact() {
    let out = fit_text(
        r#"
        data x: real[N] from "data/gmm.csv"
        v ~ InverseGamma(2, 3)
        for i in 1..N {
            x[i] ~ Normal(-4, variance = v)
        }
    "#,
    );
    let x = column("models/data/gmm.csv", "x");
    let ss: f64 = x.iter().map(|v| (v + 4.0) * (v + 4.0)).sum();
    assert!(rel(state(&out, "q.v.shape")[0], 2.0 + x.len() as f64 / 2.0) < 1e-9);
    assert!(rel(state(&out, "q.v.scale")[0], 3.0 + ss / 2.0) < 1e-9);
}

#[test]
fn gamma_exponential_on_a_derived_observation_is_exact() {
    let out = fit_text(
        r#"
        data y: count[N] from "data/counts.csv"
        lambda ~ Gamma(2, 1)
        for i in 1..N {
            y[i] + 0.5 ~ Exponential(lambda)
        }
    "#,
    );
    let y = column("models/data/counts.csv", "y");
    assert!(rel(state(&out, "q.lambda.shape")[0], 2.0 + y.len() as f64) < 1e-9);
    assert!(
        rel(
            state(&out, "q.lambda.rate")[0],
            1.0 + y.iter().map(|v| v + 0.5).sum::<f64>()
        ) < 1e-9
    );
}

#[test]
fn beta_binomial_is_exact() {
    let out = fit_text(
        r#"
        data y: count[N] from "data/counts.csv"
        p ~ Beta(2, 2)
        for i in 1..N {
            y[i] ~ Binomial(12, p)
        }
    "#,
    );
    let y = column("models/data/counts.csv", "y");
    let s: f64 = y.iter().sum();
    assert!(rel(state(&out, "q.p.a")[0], 2.0 + s) < 1e-9);
    assert!(rel(state(&out, "q.p.b")[0], 2.0 + 12.0 * y.len() as f64 - s) < 1e-9);
}

#[test]
fn dirichlet_categorical_is_exact() {
    let out = fit_text(
        r#"
        data w: count[T] from "data/lda.csv"
        const V = 12
        pi ~ Dirichlet(fill(1.0, V))
        for t in 1..T {
            w[t] ~ Categorical(pi)
        }
    "#,
    );
    let w = column("models/data/lda.csv", "w");
    let alpha = state(&out, "q.pi.alpha");
    for (k, a) in alpha.iter().enumerate() {
        let count = w.iter().filter(|v| **v as usize == k).count() as f64;
        assert!(rel(*a, 1.0 + count) < 1e-9, "alpha[{k}] = {a}");
    }
}

#[test]
fn a_normal_hierarchy_is_conjugate_and_climbs() {
    let out = fit_text(
        r#"
        data y: real[J] from "data/eight_schools.csv"
        data sigma: positive[J] from "data/eight_schools.csv"
        mu ~ Normal(0, 10)
        tau ~ Gamma(1, 1)
        for j in 1..J {
            theta[j] ~ Normal(mu, precision = tau)
            y[j] ~ Normal(theta[j], sigma[j])
        }
    "#,
    );
    assert_eq!(out.method, infer::Method::Cavi);
    assert_eq!(out.status, infer::Status::Converged);
    let theta = &out.latents.iter().find(|l| l.name == "theta").unwrap().mean;
    let mu = out.latents.iter().find(|l| l.name == "mu").unwrap().mean[0];
    // Partial pooling: every school's effect lies between its own estimate and the grand mean.
    let y = column("models/data/eight_schools.csv", "y");
    for (t, yj) in theta.iter().zip(&y) {
        assert!(
            (t - mu) * (yj - mu) >= 0.0 && (t - mu).abs() <= (yj - mu).abs() + 1e-9,
            "{t} vs {yj}, mu {mu}"
        );
    }
}

/// `y ~ Normal(mu, 1)` with y a vector and scalar parameters observes every element, as
/// Stan's vectorised statements do: CAVI and SVI both give the conjugate posterior of mu.
#[test]
fn scalar_parameters_observe_every_element_of_a_vector() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("vectorised_observation");
    std::fs::create_dir_all(&dir).unwrap();
    let ys: Vec<f64> = (0..30).map(|i| 2.0 + ((i * 5) % 9) as f64 / 4.0 - 1.0).collect();
    let text: String = ys.iter().map(|y| format!("{y}\n")).collect();
    std::fs::write(dir.join("y.csv"), format!("y\n{text}")).unwrap();
    let model = dir.join("m.vi");
    std::fs::write(
        &model,
        "data y: real[N] from \"y.csv\"\nmu ~ Normal(0, 3)\ny ~ Normal(mu, 1)\n",
    )
    .unwrap();
    let precision = 1.0 / 9.0 + ys.len() as f64;
    let (mean, sd) = (ys.iter().sum::<f64>() / precision, precision.powf(-0.5));
    for method in ["cavi", "svi"] {
        let out = dir.join(method);
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_vinf"))
            .args([
                "fit",
                model.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--method",
                method,
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let s: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
        let m = s["latents"]["mu"]["mean"][0].as_f64().unwrap();
        let q = s["latents"]["mu"]["sd"][0].as_f64().unwrap();
        assert!((m - mean).abs() < 0.05 * sd, "{method}: mean {m}, exact {mean}");
        assert!((q / sd - 1.0).abs() < 0.05, "{method}: sd {q}, exact {sd}");
    }
}

/// A statement of data alone, in a family CAVI has no update for (a StudentT of observed
/// scales), adds its log density to the exact ELBO as a constant, and changes nothing else.
/// (The random-model generator found it: CAVI hit `unreachable!` on such a statement.)
#[test]
fn a_statement_of_data_alone_adds_its_density_to_the_elbo() {
    let base = "data y: real[J] from \"data/eight_schools.csv\"\n\
                data sigma: positive[J] from \"data/eight_schools.csv\"\n\
                mu ~ Normal(0, 10)\n\
                for j in 1..J {\n    y[j] ~ Normal(mu, sigma[j])\n";
    let plain = common::fit(&load_text(&format!("{base}}}\n")));
    let with = common::fit(&load_text(&format!(
        "{base}    sigma[j] ~ StudentT(3, 10, 5)\n}}\n"
    )));
    assert_eq!(with.method, vi::infer::Method::Cavi);
    let (nu, loc, scale): (f64, f64, f64) = (3.0, 10.0, 5.0);
    let sigmas = [15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0];
    let student: f64 = sigmas
        .iter()
        .map(|s| {
            let z = (s - loc) / scale;
            vi::special::lgamma((nu + 1.0) / 2.0)
                - vi::special::lgamma(nu / 2.0)
                - 0.5 * (nu * std::f64::consts::PI).ln()
                - scale.ln()
                - (nu + 1.0) / 2.0 * (1.0 + z * z / nu).ln()
        })
        .sum();
    assert!(
        (with.elbo - plain.elbo - student).abs() < 1e-8,
        "{} - {} != {student}",
        with.elbo,
        plain.elbo
    );
    assert_eq!(
        common::summary(&with, "mu").mean,
        common::summary(&plain, "mu").mean
    );
}
