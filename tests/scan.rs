//! `scan`: recurrences. Checked against values known in closed form (a derived recurrence of
//! one latent), against an exact conjugate posterior reached through the recurrence's
//! gradients, and inside a plate (one recurrence per series).

mod common;

use std::path::{Path, PathBuf};

use vi::infer::{self, FitOutput, Status};

fn write_model(name: &str, model: &str, files: &[(&str, String)]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("scan_{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    for (f, text) in files {
        std::fs::write(dir.join(f), text).unwrap();
    }
    let path = dir.join("m.vi");
    std::fs::write(&path, model).unwrap();
    path
}

fn fit(path: &Path) -> FitOutput {
    common::fit(&common::load(path.to_str().expect("a UTF-8 path")))
}

fn derived<'a>(out: &'a FitOutput, name: &str) -> &'a infer::LatentSummary {
    out.derived
        .iter()
        .find(|d| d.name == name)
        .unwrap_or_else(|| panic!("no derived `{name}`"))
}

/// `s` doubles from `a` (member 1 is the start), `r` adds 1 from the state before member 1:
/// each member is a fixed function of `a` at every draw, so the summaries' ratios and
/// differences are exact.
#[test]
fn derived_recurrences_take_their_closed_form() {
    let ys: String = (0..20)
        .map(|i| format!("{}\n", 2.0 + (i % 5) as f64 * 0.3))
        .collect();
    let path = write_model(
        "closed_form",
        "data y: real[N] from \"y.csv\"\n\
         a ~ Normal(0, 10)\n\
         let s = scan t in 2..4 from a { 2 * s[t - 1] }\n\
         let r = scan t in 1..3 from a { r[t - 1] + 1 }\n\
         for n in 1..N {\n    y[n] ~ Normal(a, 1)\n}\n",
        &[("y.csv", format!("y\n{ys}"))],
    );
    let out = fit(&path);
    let (s, r) = (derived(&out, "s"), derived(&out, "r"));
    assert_eq!(s.shape, [4]);
    assert_eq!(r.shape, [3]);
    for k in 0..4 {
        let f = 2f64.powi(k as i32);
        assert!(
            (s.mean[k] - f * s.mean[0]).abs() < 1e-9 * f.max(s.mean[0].abs()),
            "{:?}",
            s.mean
        );
        assert!((s.sd[k] - f * s.sd[0]).abs() < 1e-9 * f, "{:?}", s.sd);
    }
    for k in 0..3 {
        assert!(
            (r.mean[k] - (s.mean[0] + 1.0 + k as f64)).abs() < 1e-9,
            "{:?}",
            r.mean
        );
        assert!((r.sd[k] - s.sd[0]).abs() < 1e-9, "{:?}", r.sd);
    }
}

/// y[t] ~ Normal(m[t], 1) where the recurrence keeps m at mu: the posterior of mu is the
/// conjugate Normal one, and the fit must reach it through T steps of the scan's gradients.
#[test]
fn gradients_through_a_scan_reach_the_exact_posterior() {
    let ys: Vec<f64> = (0..60).map(|i| 1.5 + ((i * 7) % 13) as f64 / 6.0 - 1.0).collect();
    let text: String = ys.iter().map(|y| format!("{y}\n")).collect();
    let path = write_model(
        "conjugate",
        "data y: real[T] from \"y.csv\"\n\
         mu ~ Normal(0, 3)\n\
         let m = scan t in 2..T from mu { 0.5 * m[t - 1] + 0.5 * mu }\n\
         y ~ Normal(m, 1)\n",
        &[("y.csv", format!("y\n{text}"))],
    );
    let out = fit(&path);
    assert_eq!(out.status, Status::Converged);
    let precision = 1.0 / 9.0 + ys.len() as f64;
    let (mean, sd) = (ys.iter().sum::<f64>() / precision, precision.powf(-0.5));
    let mu = out.latents.iter().find(|l| l.name == "mu").unwrap();
    assert!(
        (mu.mean[0] - mean).abs() < 0.1 * sd,
        "mean {} vs exact {mean}",
        mu.mean[0]
    );
    assert!((mu.sd[0] / sd - 1.0).abs() < 0.1, "sd {} vs exact {sd}", mu.sd[0]);
}

/// One recurrence per series inside a plate: each series' level is its own conjugate
/// posterior.
#[test]
fn a_scan_inside_a_plate_runs_once_per_member() {
    let (j, t) = (3usize, 25usize);
    let y = |a: usize, b: usize| (a as f64) * 2.0 - 2.0 + ((a * 5 + b * 3) % 7) as f64 / 7.0;
    let header: Vec<String> = (0..t).map(|b| format!("Y{b}")).collect();
    let mut text = header.join(",") + "\n";
    for a in 0..j {
        let row: Vec<String> = (0..t).map(|b| y(a, b).to_string()).collect();
        text += &(row.join(",") + "\n");
    }
    let path = write_model(
        "plate",
        "data Y: real[J, T] from \"y.csv\"\n\
         for j in 1..J {\n\
             level[j] ~ Normal(0, 5)\n\
             let m = scan t in 2..T from level[j] { m[t - 1] }\n\
             Y[j] ~ Normal(m, 1)\n\
         }\n",
        &[("y.csv", text)],
    );
    let out = fit(&path);
    let level = out.latents.iter().find(|l| l.name == "level").unwrap();
    let precision = 1.0 / 25.0 + t as f64;
    for a in 0..j {
        let exact = (0..t).map(|b| y(a, b)).sum::<f64>() / precision;
        let sd = precision.powf(-0.5);
        assert!(
            (level.mean[a] - exact).abs() < 0.15 * sd,
            "series {a}: {} vs exact {exact}",
            level.mean[a]
        );
    }
}
