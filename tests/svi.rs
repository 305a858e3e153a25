//! Reparameterised VI against truth: exact conjugate posteriors, the full-rank guide on a
//! Gaussian posterior, and NumPyro's figures on identical data.

use std::path::Path;

use vi::infer::{self, FitOptions, FitOutput};
use vi::Loaded;

mod common;

use common::{load_text, load_with, tensor as state};

fn fit(loaded: &Loaded, tweak: impl FnOnce(&mut FitOptions)) -> FitOutput {
    let mut opts = FitOptions::from_settings(&loaded.model.settings, &loaded.model);
    opts.method = vi::infer::MethodChoice::Svi;
    tweak(&mut opts);
    infer::fit(loaded, &opts, &mut |_| {}).unwrap_or_else(|d| panic!("{}", d.render_plain()))
}

fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

fn column(path: &str, name: &str) -> Vec<f64> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let k = r.headers().unwrap().iter().position(|h| h == name).unwrap();
    r.records().map(|rec| rec.unwrap()[k].parse().unwrap()).collect()
}

/// Careful optimisation: several samples per step and a decaying learning rate, so that the
/// answer is the optimum rather than Adam's jitter around it.
fn careful(o: &mut FitOptions) {
    o.samples = 8;
    o.lr = 0.02;
    o.decay = 0.002;
    o.steps = Some(6000);
    o.tol = Some(0.0);
}

#[test]
fn normal_mean_with_known_variance() {
    let model = r#"
        data x: real[N] from "data/gmm.csv"
        mu ~ Normal(1, 2)
        for i in 1..N {
            x[i] ~ Normal(mu, 3)
        }
    "#;
    let out = fit(&load_text(model), careful);
    let x = column("models/data/gmm.csv", "x");
    let prec = 1.0 / 4.0 + x.len() as f64 / 9.0;
    let (mean, sd) = (
        (1.0 / 4.0 + x.iter().sum::<f64>() / 9.0) / prec,
        prec.sqrt().recip(),
    );
    let m = state(&out, "guide.mu.loc")[0];
    let s = softplus(state(&out, "guide.mu.scale")[0]);
    assert!((m - mean).abs() < 0.05 * sd, "mean {m} vs exact {mean} (sd {sd})");
    assert!((s - sd).abs() < 0.1 * sd, "sd {s} vs exact {sd}");
}

#[test]
fn minibatches_are_unbiased() {
    // The same model with a batch of 100 out of 3000 reaches the same posterior.
    let model = r#"
        data x: real[N] from "data/gmm.csv"
        mu ~ Normal(1, 2)
        for i in 1..N batch 100 {
            x[i] ~ Normal(mu, 3)
        }
    "#;
    let out = fit(&load_text(model), |o| {
        careful(o);
        o.steps = Some(8000);
    });
    let x = column("models/data/gmm.csv", "x");
    let prec = 1.0 / 4.0 + x.len() as f64 / 9.0;
    let (mean, sd) = (
        (1.0 / 4.0 + x.iter().sum::<f64>() / 9.0) / prec,
        prec.sqrt().recip(),
    );
    let m = state(&out, "guide.mu.loc")[0];
    let s = softplus(state(&out, "guide.mu.scale")[0]);
    assert!((m - mean).abs() < 0.25 * sd, "mean {m} vs exact {mean} (sd {sd})");
    assert!((s - sd).abs() < 0.25 * sd, "sd {s} vs exact {sd}");
}

/// The exact posterior of linear-regression weights with a known noise precision, under
/// standard normal priors.
fn exact_linreg(tau: f64) -> (Vec<f64>, Vec<f64>, usize) {
    exact_linreg_with(1.0, tau)
}

/// The same under Normal(0, 1 / prior_precision) priors (0: flat).
fn exact_linreg_with(prior_precision: f64, tau: f64) -> (Vec<f64>, Vec<f64>, usize) {
    let mut r = csv::Reader::from_path("models/data/linreg.csv").unwrap();
    let rows: Vec<Vec<f64>> = r
        .records()
        .map(|rec| rec.unwrap().iter().map(|v| v.parse().unwrap()).collect())
        .collect();
    let d = rows[0].len() - 1;
    let mut lam = vec![0.0; d * d];
    let mut h = vec![0.0; d];
    for i in 0..d {
        lam[i * d + i] = prior_precision;
    }
    for row in &rows {
        for i in 0..d {
            h[i] += tau * row[i] * row[d];
            for j in 0..d {
                lam[i * d + j] += tau * row[i] * row[j];
            }
        }
    }
    // Invert by Gauss–Jordan (D is small).
    let mut a = lam.clone();
    let mut inv: Vec<f64> = (0..d * d).map(|k| f64::from(u8::from(k / d == k % d))).collect();
    for c in 0..d {
        let p = a[c * d + c];
        for j in 0..d {
            a[c * d + j] /= p;
            inv[c * d + j] /= p;
        }
        for r2 in 0..d {
            if r2 != c {
                let f = a[r2 * d + c];
                for j in 0..d {
                    a[r2 * d + j] -= f * a[c * d + j];
                    inv[r2 * d + j] -= f * inv[c * d + j];
                }
            }
        }
    }
    let mean = (0..d)
        .map(|i| (0..d).map(|j| inv[i * d + j] * h[j]).sum())
        .collect();
    (mean, inv, d)
}

#[test]
fn full_rank_guide_recovers_a_gaussian_posterior() {
    let model = r#"
        data X: real[N, D] from "data/linreg.csv"
        data y: real[N] from "data/linreg.csv"
        w ~ Normal(0, 1) [D]
        for i in 1..N {
            y[i] ~ Normal(dot(X[i], w), precision = 4.0)
        }
    "#;
    let out = fit(&load_text(model), |o| {
        careful(o);
        o.guide = vi::infer::Guide::FullRank;
        o.samples = 16;
        o.steps = Some(15000);
        o.decay = 0.001;
    });
    let (mean, cov, d) = exact_linreg(4.0);
    let loc = state(&out, "guide.loc");
    let off = state(&out, "guide.scale_tril_offdiag");
    let diag = state(&out, "guide.scale_tril_diag");
    let mut l = vec![0.0; d * d];
    let mut k = 0;
    for i in 0..d {
        for j in 0..i {
            l[i * d + j] = off[k];
            k += 1;
        }
        l[i * d + i] = softplus(diag[i]);
    }
    for i in 0..d {
        let sd = cov[i * d + i].sqrt();
        assert!(
            (loc[i] - mean[i]).abs() < 0.05 * sd,
            "w[{i}]: {} vs {} (sd {sd})",
            loc[i],
            mean[i]
        );
        for j in 0..d {
            let c: f64 = (0..d).map(|m| l[i * d + m] * l[j * d + m]).sum();
            let want = cov[i * d + j];
            // Within 10% of the entry's scale: the variances themselves on the diagonal, the
            // geometric mean of the two variances off it (covariances near zero have no
            // meaningful relative error).
            let scale = (cov[i * d + i] * cov[j * d + j]).sqrt();
            assert!((c - want).abs() < 0.1 * scale, "cov[{i},{j}] = {c}, exact {want}");
        }
    }
}

#[test]
fn eight_schools_agrees_with_numpyro() {
    // RESULTS.md (W4, AutoNormal, 10000 steps): E_q[mu] = 4.457, E_q[tau] = 3.223, from one
    // constant-learning-rate run whose own jitter is several tenths; the posterior sd of mu is
    // 3.32.
    let loaded = load_with("models/eight_schools.vi", &[]);
    let out = fit(&loaded, |o| {
        careful(o);
        o.steps = Some(15000);
        o.decay = 0.0005;
    });
    let mu = state(&out, "guide.mu.loc")[0];
    let (loc, s) = (
        state(&out, "guide.tau.loc")[0],
        softplus(state(&out, "guide.tau.scale")[0]),
    );
    let tau = (loc + s * s / 2.0).exp();
    assert!((mu - 4.457).abs() < 0.33, "E[mu] = {mu}");
    assert!((tau - 3.223).abs() < 0.15 * 3.223, "E[tau] = {tau}");
}

#[test]
fn logistic_regression_on_the_anchor_data() {
    let path = "../shared/bench/anchors/data/w3_logreg_seed0.csv";
    if !Path::new(path).exists() {
        eprintln!("skipped: {path} not here");
        return;
    }
    let loaded = load_with("models/logreg.vi", &[path]);
    let out = fit(&loaded, |_| {});
    let w = &out.latents.iter().find(|l| l.name == "w").unwrap().mean;
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{path}.json")).unwrap()).unwrap();
    let truth: Vec<f64> = meta["w_true"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let dot: f64 = w.iter().zip(&truth).map(|(a, b)| a * b).sum();
    let cos =
        dot / (w.iter().map(|a| a * a).sum::<f64>().sqrt() * truth.iter().map(|a| a * a).sum::<f64>().sqrt());
    assert!(cos >= 0.98, "cosine {cos}");
    // Accuracy of the posterior mean against NumPyro's 0.8777.
    let mut r = csv::Reader::from_path(path).unwrap();
    let (mut right, mut n) = (0usize, 0usize);
    for rec in r.records() {
        let rec = rec.unwrap();
        let v: Vec<f64> = rec.iter().map(|x| x.parse().unwrap()).collect();
        let logit: f64 = v[..20].iter().zip(w).map(|(a, b)| a * b).sum();
        right += usize::from((logit > 0.0) == (v[20] > 0.5));
        n += 1;
    }
    let acc = right as f64 / n as f64;
    assert!((acc - 0.8777).abs() <= 0.005, "accuracy {acc}");
    // Final ELBO within 1% of NumPyro's (−2819.49, mean of the last 100 steps).
    assert!((out.elbo - -2819.49).abs() < 0.01 * 2819.49, "ELBO {}", out.elbo);
}

#[test]
fn cavi_and_full_rank_svi_agree_on_linreg() {
    let loaded = load_with("models/linreg.vi", &[]);
    let mut opts = FitOptions::from_settings(&loaded.model.settings, &loaded.model);
    opts.method = vi::infer::MethodChoice::Cavi;
    let cavi = infer::fit(&loaded, &opts, &mut |_| {}).unwrap();
    let svi = fit(&loaded, |o| {
        careful(o);
        o.guide = vi::infer::Guide::FullRank;
        o.samples = 16;
        o.steps = Some(15000);
        o.decay = 0.001;
    });
    let cw = cavi.latents.iter().find(|l| l.name == "w").unwrap();
    let loc = state(&svi, "guide.loc");
    for (i, ((l, m), sd)) in loc.iter().zip(&cw.mean).zip(&cw.sd).enumerate() {
        assert!((l - m).abs() < 0.05 * sd, "w[{i}]: svi {l} cavi {m} (sd {sd})");
    }
}

#[test]
fn a_discrete_latent_is_refused_with_a_pointer() {
    let loaded = load_with("models/gmm.vi", &[]);
    let mut opts = FitOptions::from_settings(&loaded.model.settings, &loaded.model);
    opts.method = vi::infer::MethodChoice::Svi;
    let err = infer::fit(&loaded, &opts, &mut |_| {}).unwrap_err();
    let d = err.iter().next().unwrap();
    assert_eq!(d.code, "vi::svi::discrete_latent");
    assert!(d.help.as_deref().unwrap_or("").contains("cavi"));
}

#[test]
fn a_diverging_fit_stops_and_names_the_statement() {
    // Poisson counts with a Normal log-rate and a learning rate far too large.
    let model = r#"
        data y: count[N] from "data/counts.csv"
        r ~ Normal(0, 10)
        for i in 1..N {
            y[i] ~ Poisson(exp(r * 1000))
        }
    "#;
    let loaded = load_text(model);
    let out = fit(&loaded, |o| {
        o.lr = 50.0;
        o.steps = Some(200);
    });
    assert_eq!(out.status, infer::Status::Diverged);
    let d = out.diverged.expect("a diagnostic");
    assert_eq!(d.code, "vi::fit::non_finite");
    assert!(d.primary_span().is_some());
}

#[test]
fn a_full_rank_guide_recovers_a_correlated_mvnormal() {
    // With no data the posterior is the prior: N(m, C) with correlation 0.8.
    let model = r#"
        const C = [[1.0, 0.8], [0.8, 1.0]]
        w ~ MvNormal([1.0, -2.0], C)
    "#;
    let out = fit(&load_text(model), |o| {
        careful(o);
        o.guide = vi::infer::Guide::FullRank;
        o.steps = Some(8000);
    });
    let loc = state(&out, "guide.loc");
    let off = state(&out, "guide.scale_tril_offdiag")[0];
    let (d0, d1) = (
        softplus(state(&out, "guide.scale_tril_diag")[0]),
        softplus(state(&out, "guide.scale_tril_diag")[1]),
    );
    let cov = [d0 * d0, d0 * off, off * off + d1 * d1];
    assert!(
        (loc[0] - 1.0).abs() < 0.05 && (loc[1] + 2.0).abs() < 0.05,
        "{loc:?}"
    );
    for (c, want) in cov.iter().zip([1.0, 0.8, 1.0]) {
        assert!((c - want).abs() < 0.1, "{cov:?}");
    }
}

#[test]
fn a_full_rank_guide_over_one_value_fits_the_exact_posterior() {
    // One latent makes the Cholesky factor 1 × 1 with an empty off-diagonal, which once
    // panicked inside dfdx.
    let out = fit(&common::load("models/poisson_gamma.vi"), |o| {
        careful(o);
        o.guide = vi::infer::Guide::FullRank;
    });
    let y = column("models/data/counts.csv", "y");
    let (shape, rate) = (2.0 + y.iter().sum::<f64>(), 1.0 + y.len() as f64);
    let (mean, sd) = (shape / rate, shape.sqrt() / rate);
    let m = out.latents[0].mean[0];
    let s = out.latents[0].sd[0];
    assert!((m - mean).abs() < 0.1 * sd, "mean {m} vs exact {mean} (sd {sd})");
    assert!((s / sd - 1.0).abs() < 0.15, "sd {s} vs exact {sd}");
}

/// The Pathfinder start on 450 latents (past its dense inverse Hessians, so diagonal ones):
/// y_j ~ Normal(z_j, 1), z_j ~ Normal(0, 1) has the exact posterior N(y_j / 2, 1/2) per j,
/// and the default fit gets there quickly and says it converged.
#[test]
fn the_pathfinder_start_handles_hundreds_of_latents() {
    let dir = std::env::temp_dir().join(format!("vi-pf-many-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ys: Vec<f64> = (0..450).map(|j| ((j * 37) % 29) as f64 / 4.0 - 3.5).collect();
    let mut csv = String::from("y\n");
    for y in &ys {
        csv.push_str(&format!("{y}\n"));
    }
    let path = dir.join("many.csv");
    std::fs::write(&path, csv).unwrap();
    let model = format!(
        "data y: real[J] from \"{}\"\nfor j in 1..J {{\n    z[j] ~ Normal(0, 1)\n    y[j] ~ Normal(z[j], 1)\n}}\n",
        path.display()
    );
    let started = std::time::Instant::now();
    let out = fit(&load_text(&model), |_| {});
    assert_eq!(out.status, vi::infer::Status::Converged);
    assert!(
        out.notes.iter().any(|n| n.contains("Pathfinder")),
        "{:?}",
        out.notes
    );
    let z = out.latents.iter().find(|l| l.name == "z").unwrap();
    for (j, (m, s)) in z.mean.iter().zip(&z.sd).enumerate() {
        assert!((m - ys[j] / 2.0).abs() < 0.15, "z[{j}]: {m} vs {}", ys[j] / 2.0);
        assert!((s / 0.5f64.sqrt() - 1.0).abs() < 0.2, "z[{j}] sd {s}");
    }
    assert!(started.elapsed().as_secs_f64() < 60.0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Flat priors (Stan's default) on regression weights: a warning that the posterior must be
/// proper, and at default settings the exact posterior N((X'X)^-1 X'y, (τ X'X)^-1).
#[test]
fn flat_priors_warn_and_fit_the_exact_posterior() {
    let model = r#"
        data X: real[N, D] from "data/linreg.csv"
        data y: real[N] from "data/linreg.csv"
        w ~ Flat() [D]
        for i in 1..N {
            y[i] ~ Normal(dot(X[i], w), precision = 4.0)
        }
    "#;
    let loaded = load_text(model);
    let codes: Vec<&str> = loaded.model.warnings.iter().map(|w| w.code).collect();
    assert_eq!(codes, ["vi::prior::improper"]);
    let mut opts = FitOptions::from_settings(&loaded.model.settings, &loaded.model);
    opts.seed = 2;
    let out = infer::fit(&loaded, &opts, &mut |_| {}).unwrap_or_else(|d| panic!("{}", d.render_plain()));
    let (mean, cov, d) = exact_linreg_with(0.0, 4.0);
    let w = out.latents.iter().find(|l| l.name == "w").expect("w summarised");
    for i in 0..d {
        let sd = cov[i * d + i].sqrt();
        assert!(
            (w.mean[i] - mean[i]).abs() < 0.1 * sd,
            "w[{i}]: {} vs {} (sd {sd})",
            w.mean[i],
            mean[i]
        );
        let ratio = w.sd[i] / sd;
        assert!((ratio - 1.0).abs() < 0.1, "w[{i}] sd {} vs {sd}", w.sd[i]);
    }
}

/// `b ~ Uniform(0, a)` with `a ~ Uniform(0, 1)` and no data: the posterior is the prior, under
/// which a and b / a are independent uniforms, so E[a] = 1/2 and E[b] = 1/4; every draw of b
/// lies below its own a (the support follows the moving bound).
#[test]
fn a_uniform_bound_that_moves_with_another_latent_is_followed() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("moving_uniform");
    std::fs::create_dir_all(&dir).unwrap();
    let model = dir.join("m.vi");
    std::fs::write(&model, "a ~ Uniform(0, 1)\nb ~ Uniform(0, a)\n").unwrap();
    let out = dir.join("fit");
    let run = |args: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_vinf"))
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    let (m, o) = (model.to_str().unwrap(), out.to_str().unwrap());
    run(&["fit", m, "--out", o, "--seed", "3"]);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let mean = |name: &str| summary["latents"][name]["mean"][0].as_f64().unwrap();
    assert!((mean("a") - 0.5).abs() < 0.03, "E[a] = {}", mean("a"));
    assert!((mean("b") - 0.25).abs() < 0.03, "E[b] = {}", mean("b"));
    run(&["sample", m, "--from", o, "-n", "500"]);
    let csv = std::fs::read_to_string(out.join("samples.csv")).unwrap();
    // Long format: draw,variable,kind,index,value.
    let mut draws: std::collections::HashMap<usize, (f64, f64)> = Default::default();
    for line in csv.lines().skip(1) {
        let cells: Vec<&str> = line.split(',').collect();
        let (draw, value): (usize, f64) = (cells[0].parse().unwrap(), cells[4].parse().unwrap());
        let entry = draws.entry(draw).or_insert((f64::NAN, f64::NAN));
        match cells[1] {
            "a" => entry.0 = value,
            "b" => entry.1 = value,
            _ => {}
        }
    }
    assert_eq!(draws.len(), 500);
    for (draw, (a, b)) in draws {
        assert!(b > 0.0 && b < a, "draw {draw}: b = {b} outside (0, a = {a})");
    }
}

/// A full-rank guide over latents drawn per member of a minibatched plate is refused before
/// fitting, at the latent (the random-model fuzzer found it panicking in a gather).
#[test]
fn a_full_rank_guide_refuses_local_latents_of_a_minibatched_plate() {
    let text = "data y: real[N] from \"data/eight_schools.csv\"\n\
                for i in 1..N batch 2 {\n    u[i] ~ Normal(0, 1)\n    y[i] ~ Normal(u[i], 10)\n}\n\
                fit { guide = full_rank }\n";
    let loaded = load_text(text);
    let opts = FitOptions::from_settings(&loaded.model.settings, &loaded.model);
    let err = infer::fit(&loaded, &opts, &mut |_| {}).expect_err("refused");
    let d = err.iter().next().unwrap();
    assert_eq!(d.code, "vi::guide::full_rank_local", "{}", err.render_plain());
    assert!(d.primary_span().is_some() && d.help.is_some());
    // Mean-field fits it.
    let out = fit(&loaded, |o| o.guide = vi::infer::Guide::MeanField);
    assert!(out.elbo.is_finite());
}
