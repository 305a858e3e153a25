//! `target +=` terms and `Mixture` likelihoods: a log-density term written by hand gives the
//! exact conjugate posterior its `~` statement would, and a two-component Gaussian mixture with
//! non-conjugate (HalfNormal) scales, its component index summed out, recovers the parameters
//! its data were drawn from.

use std::path::{Path, PathBuf};
use std::process::Command;

fn write(name: &str, model: &str, data: &[f64]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("mixture_{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    let text: String = data.iter().map(|y| format!("{y}\n")).collect();
    std::fs::write(dir.join("y.csv"), format!("y\n{text}")).unwrap();
    let path = dir.join("m.vi");
    std::fs::write(&path, model).unwrap();
    path
}

fn vinf(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_vinf"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.code().is_some_and(|c| c == 0 || c == 3),
        "vinf {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

fn means(s: &serde_json::Value, name: &str) -> Vec<f64> {
    s["latents"][name]["mean"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

#[test]
fn a_target_term_gives_the_posterior_of_its_likelihood() {
    let ys: Vec<f64> = (0..50).map(|i| 1.5 + ((i * 7) % 13) as f64 / 6.0 - 1.0).collect();
    let path = write(
        "target",
        "data y: real[N] from \"y.csv\"\nmu ~ Normal(0, 3)\nfor n in 1..N {\n    target += -0.5 * (y[n] - mu) ^ 2\n}\n",
        &ys,
    );
    let out = path.with_file_name("fit");
    vinf(&["fit", path.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    let s = summary(&out);
    assert_eq!(s["status"], "converged");
    let precision = 1.0 / 9.0 + ys.len() as f64;
    let (mean, sd) = (ys.iter().sum::<f64>() / precision, precision.powf(-0.5));
    let (m, q) = (means(&s, "mu")[0], s["latents"]["mu"]["sd"][0].as_f64().unwrap());
    assert!((m - mean).abs() < 0.1 * sd, "mean {m} vs exact {mean}");
    assert!((q / sd - 1.0).abs() < 0.1, "sd {q} vs exact {sd}");
}

/// 300 draws from 0.3 N(-2, 0.7) + 0.7 N(3, 1.2) by a fixed generator.
fn mixture_data() -> Vec<f64> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut uniform = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    (0..300)
        .map(|_| {
            let (u1, u2, pick) = (uniform(), uniform(), uniform());
            let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            if pick < 0.3 {
                -2.0 + 0.7 * z
            } else {
                3.0 + 1.2 * z
            }
        })
        .collect()
}

#[test]
fn a_gaussian_mixture_with_halfnormal_scales_recovers_its_components() {
    let ys = mixture_data();
    let path = write(
        "gaussian",
        "data y: real[N] from \"y.csv\"\n\
         w ~ Dirichlet([1, 1])\n\
         mu ~ Normal(0, 5) [2]\n\
         sigma ~ HalfNormal(2) [2]\n\
         for n in 1..N {\n    y[n] ~ Mixture(w, Normal(mu, sigma))\n}\n",
        &ys,
    );
    let out = path.with_file_name("fit");
    vinf(&[
        "fit",
        path.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--seed",
        "1",
    ]);
    let s = summary(&out);
    // Components are exchangeable: order them by location.
    let (mu, w, sigma) = (means(&s, "mu"), means(&s, "w"), means(&s, "sigma"));
    let (lo, hi) = if mu[0] < mu[1] { (0, 1) } else { (1, 0) };
    assert!(
        (mu[lo] + 2.0).abs() < 0.3 && (mu[hi] - 3.0).abs() < 0.3,
        "means {mu:?}"
    );
    assert!((w[lo] - 0.3).abs() < 0.07, "weights {w:?}");
    assert!(
        (sigma[lo] - 0.7).abs() < 0.25 && (sigma[hi] - 1.2).abs() < 0.25,
        "scales {sigma:?}"
    );
    // Posterior predictive draws of y come from the fitted mixture.
    vinf(&[
        "sample",
        path.to_str().unwrap(),
        "--from",
        out.to_str().unwrap(),
        "-n",
        "20",
    ]);
    let csv = std::fs::read_to_string(out.join("samples.csv")).unwrap();
    let ys_drawn: Vec<f64> = csv
        .lines()
        .filter(|l| l.contains(",y,predictive,"))
        .map(|l| l.rsplit(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(ys_drawn.len(), 20 * 300);
    assert!(ys_drawn.iter().all(|v| v.is_finite()));
    let below = ys_drawn.iter().filter(|v| **v < 0.5).count() as f64 / ys_drawn.len() as f64;
    assert!(
        (below - 0.3).abs() < 0.05,
        "{below} of the draws in the low component"
    );
}
