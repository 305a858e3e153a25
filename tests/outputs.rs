//! What people read of a fit: the plan said before fitting, categorical latents by their
//! probabilities, one labelled ELBO unit for minibatched models, the posterior plots, and
//! progress that a pipe can read.

mod common;

use std::process::Command;

use vi::infer::{FitOptions, Method, Progress};

fn vinf(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vinf"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs")
}

/// `vinf fit MODEL ARGS... --out DIR`, DIR a temporary folder named for the test.
fn fit_into(name: &str, model: &str, args: &[&str]) -> (std::path::PathBuf, std::process::Output) {
    let dir = std::env::temp_dir().join(format!("vi-{name}-{}", std::process::id()));
    let out = dir.to_string_lossy().to_string();
    let mut all = vec!["fit", model];
    all.extend_from_slice(args);
    all.extend(["--out", &out]);
    (dir.clone(), vinf(&all))
}

fn json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn the_method_and_its_reasons_come_before_the_first_step() {
    for (model, method) in [("models/gmm.vi", Method::Cavi), ("models/logreg.vi", Method::Svi)] {
        let loaded = common::load(model);
        let opts = FitOptions::from_settings(&loaded.model.settings, &loaded.model);
        let mut events = Vec::new();
        vi::infer::fit(&loaded, &opts, &mut |p| {
            events.push(match p {
                Progress::Plan { method, reasons, .. } => format!("plan {} {}", method.name(), reasons.len()),
                Progress::Step { .. } => "step".to_string(),
                _ => "other".to_string(),
            })
        })
        .unwrap();
        let expected = format!("plan {} {}", method.name(), loaded.model.latents.len());
        assert_eq!(events[0], expected, "{model}");
        assert!(events.iter().skip(1).any(|e| e == "step"));
    }
}

#[test]
fn restarts_are_labelled_and_closed_with_their_elbo() {
    let (dir, r) = fit_into("restarts", "models/gmm.vi", &["--restarts", "3"]);
    assert_eq!(r.status.code(), Some(0));
    let err = String::from_utf8_lossy(&r.stderr);
    for k in 1..=3 {
        assert!(err.contains(&format!("restart {k}/3: ELBO -")), "{err}");
    }
    // The plan is on stdout, first.
    assert!(String::from_utf8_lossy(&r.stdout).starts_with("method: cavi\n"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn categorical_latents_are_summarised_by_their_probabilities() {
    let (dir, r) = fit_into("categorical", "models/gmm.vi", &[]);
    assert_eq!(r.status.code(), Some(0));
    let table = String::from_utf8_lossy(&r.stdout);
    assert!(table.contains("categorical  most likely  probability"), "{table}");
    let (main, _) = table.split_once("categorical  most likely").unwrap();
    assert!(!main.contains("c[0]"), "no mean-of-a-label row:\n{table}");
    let c = &json(&dir.join("summary.json"))["latents"]["c"];
    assert_eq!(c["categories"], 3);
    let probs = c["probabilities"].as_array().unwrap();
    assert_eq!(probs.len(), 3000);
    for (i, row) in probs.iter().enumerate().take(200) {
        let row: Vec<f64> = row
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        let best = (0..3).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap();
        assert_eq!(c["most_likely"][i], best);
        assert!((c["probability"][i].as_f64().unwrap() - row[best]).abs() < 1e-12);
    }
    // The data were drawn from three well-separated components: nearly all points are sure.
    let sure = (0..3000)
        .filter(|&i| c["probability"][i].as_f64().unwrap() >= 0.9)
        .count();
    assert!(sure > 2500, "{sure}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_minibatched_fit_reports_one_elbo_unit_labelled_total_and_per_row() {
    let (dir, r) = fit_into("units", "models/vae.vi", &["--epochs", "2"]);
    assert_eq!(r.status.code(), Some(0), "{}", String::from_utf8_lossy(&r.stderr));
    let s = json(&dir.join("summary.json"));
    let rows = s["rows"].as_f64().unwrap();
    // 1797 digits, a tenth held out.
    assert_eq!(rows, 1618.0);
    let last = s["epochs"].as_array().unwrap().last().unwrap()["train"]["elbo"]
        .as_f64()
        .unwrap();
    assert!((s["elbo"].as_f64().unwrap() - last * rows).abs() < 1e-6 * rows);
    assert!((s["elbo_per_row"].as_f64().unwrap() - last).abs() < 1e-9);
    let stdout = String::from_utf8_lossy(&r.stdout);
    assert!(
        stdout.contains("total over 1618 rows") && stdout.contains("per row"),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&r.stderr);
    let step = stderr.lines().find(|l| l.starts_with("step ")).unwrap();
    assert!(
        step.contains(" total (") && step.contains("per row)") && step.contains("steps/s"),
        "{step}"
    );
    assert!(std::fs::read_to_string(dir.join("elbo.svg"))
        .unwrap()
        .contains("ELBO (total over 1618 rows)"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_fit_writes_a_forest_plot_and_marginal_densities() {
    let (dir, r) = fit_into("plots", "models/eight_schools.vi", &[]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let forest = std::fs::read_to_string(dir.join("posterior.svg")).unwrap();
    // plotters writes each text on its own line.
    for label in [
        "posterior means and 90% intervals",
        "\ntheta_tilde[7]\n",
        "\ntau\n",
    ] {
        assert!(forest.contains(label), "{label} not in posterior.svg");
    }
    let densities = std::fs::read_to_string(dir.join("densities.svg")).unwrap();
    assert!(densities.contains("marginal posterior densities (1000 draws of q)"));
    // mu, tau and the eight theta_tilde: ten panels, each titled.
    assert_eq!(densities.matches("\ndensity\n").count(), 10);
    assert!(densities.contains("\ntheta_tilde[7]\n"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn eval_progress_is_a_line_per_tenth_when_piped() {
    let (dir, fitted) = fit_into("eval-progress", "models/vae.vi", &["--epochs", "1"]);
    assert!(fitted.status.success());
    let r = vinf(&[
        "eval",
        "models/vae.vi",
        "--from",
        &dir.to_string_lossy(),
        "-k",
        "20",
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let stderr = String::from_utf8_lossy(&r.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains(" rows  (")).collect();
    assert!((1..=11).contains(&lines.len()), "{stderr}");
    assert!(lines.last().unwrap().starts_with("179/179 rows"), "{stderr}");
    assert!(!stderr.contains('\r'));
    let _ = std::fs::remove_dir_all(&dir);
}
