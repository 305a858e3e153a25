//! Derived quantities: a model's `let` of latents alone (Stan's transformed parameters) is
//! reported like a latent by `vinf fit` (table and `summary.json`) and `vinf sample`.

use std::path::Path;
use std::process::Command;

fn derived_names(model: &str) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(model);
    let loaded =
        vi::load(&path, &vi::LoadOptions::default()).unwrap_or_else(|d| panic!("{}", d.render_plain()));
    loaded.model.derived.iter().map(|d| d.name.clone()).collect()
}

/// The lets that read latents and no data, and only those.
#[test]
fn derived_quantities_are_the_lets_of_latents_alone() {
    assert_eq!(
        derived_names("models/posteriordb/eight_schools_noncentered.vi"),
        ["theta"]
    );
    // `mu` reads the county index and the covariates: an intermediate.
    assert_eq!(
        derived_names("models/posteriordb/radon_hierarchical_intercept_noncentered.vi"),
        ["alpha"]
    );
    // The conditional volatilities read y.
    assert!(derived_names("models/posteriordb/garch11.vi").is_empty());
    // The stochastic volatility's log-volatilities are a scan of latents alone.
    assert_eq!(derived_names("models/timeseries/stochastic_volatility.vi"), ["h"]);
    assert!(derived_names("models/vae.vi").iter().all(|n| n != "h"));
}

fn vinf(args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_vinf"))
        .args(args)
        .output()
        .expect("vinf runs");
    assert!(
        out.status.success(),
        "vinf {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Fitted by CAVI and by SVI: the summary's derived mean and sd are those of 2 mu + 1 (within
/// Monte-Carlo error of 1000 draws), and every sampled draw of it is 2 mu + 1 at that draw.
#[test]
fn fit_and_sample_report_derived_quantities() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("derived_quantities");
    std::fs::create_dir_all(&dir).unwrap();
    let ys: String = (0..40)
        .map(|i| format!("{}\n", 3.0 + ((i * 7) % 11) as f64 / 5.0 - 1.0))
        .collect();
    std::fs::write(dir.join("y.csv"), format!("y\n{ys}")).unwrap();
    let model = dir.join("m.vi");
    std::fs::write(
        &model,
        "data y: real[N] from \"y.csv\"\nmu ~ Normal(0, 10)\nlet shifted = 2 * mu + 1\nfor n in 1..N {\n    y[n] ~ Normal(mu, 1)\n}\n",
    )
    .unwrap();
    let model = model.to_str().unwrap();
    for method in ["cavi", "svi"] {
        let out = dir.join(method);
        let out_s = out.to_str().unwrap();
        let fit = vinf(&["fit", model, "--method", method, "--out", out_s]);
        assert!(
            String::from_utf8_lossy(&fit.stdout).contains("shifted (derived)"),
            "{method}: the table"
        );
        let summary: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
        let (m, s) = (
            summary["latents"]["mu"]["mean"][0].as_f64().unwrap(),
            summary["latents"]["mu"]["sd"][0].as_f64().unwrap(),
        );
        let (dm, ds) = (
            summary["derived"]["shifted"]["mean"][0].as_f64().unwrap(),
            summary["derived"]["shifted"]["sd"][0].as_f64().unwrap(),
        );
        assert!(
            (dm - (2.0 * m + 1.0)).abs() < 4.0 * 2.0 * s / 1000f64.sqrt(),
            "{method}: mean {dm} vs {m}"
        );
        assert!((ds / (2.0 * s) - 1.0).abs() < 0.15, "{method}: sd {ds} vs {s}");

        let csv = out.join("draws.csv");
        vinf(&[
            "sample",
            model,
            "--from",
            out_s,
            "-n",
            "20",
            "--out",
            csv.to_str().unwrap(),
        ]);
        let text = std::fs::read_to_string(&csv).unwrap();
        let value = |var: &str, kind: &str, draw: usize| -> f64 {
            let prefix = format!("{draw},{var},{kind},");
            let line = text
                .lines()
                .find(|l| l.starts_with(&prefix))
                .unwrap_or_else(|| panic!("no {prefix}"));
            line.rsplit(',').next().unwrap().parse().unwrap()
        };
        for draw in 0..20 {
            let mu = value("mu", "latent", draw);
            assert!((value("shifted", "derived", draw) - (2.0 * mu + 1.0)).abs() < 1e-9);
        }
    }
}
