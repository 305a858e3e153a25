//! PSIS-LOO against ArviZ: `az.loo` on a fixed log-likelihood matrix (500 posterior draws × 12
//! observations, two of them outliers with k̂ above 0.7; `tests/fixtures/loo/make.py`) and
//! vinf's `psis::loo` on the same matrix agree on every pointwise elpd and k̂, the total, its
//! standard error and p_loo.

use vi::infer::psis;

#[test]
fn psis_loo_matches_arviz_on_the_same_draws() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/loo");
    let rows: Vec<Vec<f64>> = std::fs::read_to_string(dir.join("log_lik.csv"))
        .unwrap()
        .lines()
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    let (draws, n) = (rows.len(), rows[0].len());
    let by_obs: Vec<Vec<f64>> = (0..n).map(|i| rows.iter().map(|r| r[i]).collect()).collect();
    let points = psis::loo(&by_obs, &vec![0.0; draws]);
    let want: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("arviz.json")).unwrap()).unwrap();
    let num = |v: &serde_json::Value| v.as_f64().unwrap();
    for (i, p) in points.iter().enumerate() {
        let (elpd, k) = (num(&want["loo_i"][i]), num(&want["pareto_k"][i]));
        assert!(
            (p.elpd - elpd).abs() < 1e-6 * elpd.abs().max(1.0),
            "obs {i}: elpd {} vs {elpd}",
            p.elpd
        );
        assert!((p.khat - k).abs() < 1e-6, "obs {i}: k-hat {} vs {k}", p.khat);
    }
    let summary = vi::infer::posterior::loo::Summary::of(&points);
    assert!((summary.elpd - num(&want["elpd_loo"])).abs() < 1e-6);
    assert!((summary.se - num(&want["se"])).abs() < 1e-6);
    assert!((summary.p_loo - num(&want["p_loo"])).abs() < 1e-6);
}

/// A Normal mean with a conjugate prior: each leave-one-out predictive density is Normal in
/// closed form, so the exact elpd is known; `vinf loo` on the CAVI fit (exact q) and on a
/// gradient fit must reach it within Monte-Carlo error, and write loo.json.
#[test]
fn vinf_loo_reaches_the_exact_leave_one_out_elpd() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("loo_exact");
    std::fs::create_dir_all(&dir).unwrap();
    let ys: Vec<f64> = (0..40).map(|i| 1.0 + ((i * 7) % 13) as f64 / 4.0 - 1.5).collect();
    let text: String = ys.iter().map(|y| format!("{y}\n")).collect();
    std::fs::write(dir.join("y.csv"), format!("y\n{text}")).unwrap();
    let model = dir.join("m.vi");
    std::fs::write(
        &model,
        "data y: real[N] from \"y.csv\"\nmu ~ Normal(0, 3)\nfor n in 1..N {\n    y[n] ~ Normal(mu, 1)\n}\n",
    )
    .unwrap();
    let exact: f64 = (0..ys.len())
        .map(|i| {
            let rest: f64 = ys
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, y)| y)
                .sum();
            let precision = 1.0 / 9.0 + (ys.len() - 1) as f64;
            let (m, v) = (rest / precision, 1.0 / precision);
            -0.5 * (2.0 * std::f64::consts::PI * (1.0 + v)).ln() - 0.5 * (ys[i] - m).powi(2) / (1.0 + v)
        })
        .sum();
    for method in ["cavi", "svi"] {
        let out = dir.join(method);
        let run = |args: &[&str]| {
            let o = std::process::Command::new(env!("CARGO_BIN_EXE_vinf"))
                .args(args)
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        };
        let (m, o) = (model.to_str().unwrap(), out.to_str().unwrap());
        run(&["fit", m, "--out", o, "--method", method]);
        run(&["loo", m, "--from", o, "-n", "4000"]);
        let loo: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("loo.json")).unwrap()).unwrap();
        let elpd = loo["elpd_loo"].as_f64().unwrap();
        assert!(
            (elpd - exact).abs() < 0.1,
            "{method}: elpd_loo {elpd}, exact {exact}"
        );
        assert_eq!(loo["pointwise"].as_array().unwrap().len(), ys.len());
    }
    // A fit of another model is refused by every after-fit command, naming the model it was
    // made from (it used to warn and compute anyway).
    let other = dir.join("other.vi");
    std::fs::copy(&model, &other).unwrap();
    let from = dir.join("cavi");
    for cmd in [&["loo"][..], &["sample", "-n", "10"], &["eval"]] {
        let mut args = vec![cmd[0], other.to_str().unwrap(), "--from", from.to_str().unwrap()];
        args.extend(&cmd[1..]);
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_vinf"))
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("vi::fit::other_model") && err.contains("of model `m`"),
            "{args:?}: {err}"
        );
    }
}
