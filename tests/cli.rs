//! The command-line contract: exit codes, outputs, and that nothing a user types panics.

use std::path::Path;
use std::process::{Command, Output};

fn vi(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vinf"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the vi binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

#[test]
fn check_succeeds_on_every_model() {
    // The examples, and the posteriordb and time-series translations beside them.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in [
        "models",
        "models/posteriordb",
        "models/timeseries",
        "models/hierarchical",
    ] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "vi") {
                files.push(format!("{dir}/{}", path.file_name().unwrap().to_string_lossy()));
            }
        }
    }
    assert!(files.len() >= 25, "only {} models found", files.len());
    for rel in files {
        let out = vi(&["check", &rel]);
        assert_eq!(out.status.code(), Some(0), "{rel}: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains("checks"));
        let out = vi(&["check", &rel, "--no-default-data"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{rel} without data: {}",
            text(&out.stderr)
        );
    }
}

/// Every mistake in tests/errors/: its path, its source, and the `vinf check` arguments that
/// load it (its `# args:` header line included), with `extra` after them.
fn error_fixtures(extra: &[&str]) -> Vec<(std::path::PathBuf, String, Vec<String>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/errors")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "vi") {
            continue;
        }
        let src = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        let mut args = vec![
            "check".to_string(),
            format!("tests/errors/{}", path.file_name().unwrap().to_string_lossy()),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        if let Some(line) = src.lines().find_map(|l| l.strip_prefix("# args:")) {
            args.extend(line.split_whitespace().map(str::to_string));
        }
        out.push((path, src, args));
    }
    out
}

#[test]
fn model_errors_exit_1_with_a_located_diagnostic() {
    for (path, _, args) in error_fixtures(&[]) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = vi(&args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{}: {err}", path.display());
        // A located diagnostic: a `file:line:col` header, a labelled span and a help line.
        assert!(err.contains("╭─["), "{}: no location in {err}", path.display());
        assert!(err.contains("help:"), "{}: no help in {err}", path.display());
        assert!(
            !err.contains("panicked") && !err.contains("internal error"),
            "{err}"
        );
    }
}

/// `--message-format json`: every mistake in tests/errors/ comes out as JSON lines on stderr,
/// each with the expected code, a help line, and a primary label with a line and column.
#[test]
fn json_diagnostics_carry_code_location_and_help() {
    for (path, src, args) in error_fixtures(&["--message-format", "json"]) {
        let expect = src
            .lines()
            .find_map(|l| l.strip_prefix("# expect:"))
            .unwrap()
            .trim()
            .to_string();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = vi(&args);
        assert_eq!(out.status.code(), Some(1), "{}", path.display());
        let diags: Vec<serde_json::Value> = text(&out.stderr)
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: not JSON ({e}): {l}", path.display()))
            })
            .collect();
        let d = diags
            .iter()
            .find(|d| d["code"] == expect.as_str())
            .unwrap_or_else(|| panic!("{}: no {expect} in {diags:?}", path.display()));
        assert!(d["help"].is_string(), "{}: no help", path.display());
        let primary = d["labels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["primary"] == true);
        let primary = primary.unwrap_or_else(|| panic!("{}: no primary label", path.display()));
        assert!(
            primary["line"].as_u64().is_some_and(|l| l >= 1),
            "{}: {primary}",
            path.display()
        );
        assert!(
            primary["column"].as_u64().is_some_and(|c| c >= 1),
            "{}: {primary}",
            path.display()
        );
    }
}

/// Shell completions name every command, the man page documents them, and `--help` lists the
/// data formats.
#[test]
fn completions_man_page_and_help() {
    for shell in ["bash", "zsh", "fish"] {
        let out = vi(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = text(&out.stdout);
        for cmd in ["check", "fit", "sample", "loo", "lsp"] {
            assert!(script.contains(cmd), "{shell} completions lack {cmd}");
        }
    }
    let man = text(&vi(&["man"]).stdout);
    assert!(man.starts_with(".ie") || man.contains(".TH vinf 1"), "{man}");
    assert!(man.contains("lsp") && man.contains("completions"), "{man}");
    let help = text(&vi(&["fit", "--help"]).stdout);
    for format in ["CSV", ".npy", "IDX", ".amat", ".mat", "gzipped"] {
        assert!(help.contains(format), "--help lacks {format}");
    }
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(vi(&[]).status.code(), Some(2));
    assert_eq!(vi(&["check"]).status.code(), Some(2));
    assert_eq!(vi(&["frobnicate", "models/gmm.vi"]).status.code(), Some(2));
    assert_eq!(
        vi(&["check", "models/gmm.vi", "--data", "1x=a.csv"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        vi(&["graph", "models/gmm.vi", "--format", "png"]).status.code(),
        Some(2)
    );
}

#[test]
fn out_of_range_numbers_are_usage_errors_not_crashes() {
    let fit = |flag: &str, value: &str| {
        let arg = format!("--{flag}={value}");
        let r = vi(&["fit", "models/eight_schools.vi", &arg, "--out", "/dev/null/never"]);
        let err = text(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "{arg}: {err}");
        assert!(
            err.contains(&format!("'--{flag}")) && !err.contains("internal error"),
            "{arg}: {err}"
        );
    };
    for (flag, value) in [
        ("lr", "-1"),
        ("lr", "nan"),
        ("lr", "inf"),
        ("samples", "0"),
        ("steps", "0"),
        ("epochs", "0"),
        ("clip", "0"),
        ("tol", "-1"),
        ("restarts", "0"),
        ("holdout", "0.95"),
        ("checkpoint-every", "0"),
        ("lr-backoff", "1.5"),
    ] {
        fit(flag, value);
    }
    for args in [
        ["sample", "models/eight_schools.vi", "--from", "out", "-n", "0"],
        ["eval", "models/vae.vi", "--from", "out", "-k", "0"],
    ] {
        let r = vi(&args);
        assert_eq!(r.status.code(), Some(2), "{args:?}: {}", text(&r.stderr));
    }
}

/// A setting's bad value is answered by the settings table, in the words a user types: a
/// negative number is a value (not an unknown flag `-0`), a count wants a whole number of what
/// it counts, and a choice lists its spellings with hyphens.
#[test]
fn bad_setting_values_say_what_the_flag_wants() {
    for (args, want) in [
        (
            &["--steps", "abc"][..],
            "expected a whole number of steps, found `abc`",
        ),
        (&["--lr", "-0.1"], "must be positive"),
        (&["--tol", "-1"], "must be between 0 and 1"),
        (&["--seed", "-3"], "must be at least 0"),
        (&["--guide", "meanfield"], "expected one of mean-field, full-rank"),
    ] {
        let mut all = vec!["fit", "models/eight_schools.vi", "--out", "/dev/null/never"];
        all.extend(args);
        let r = vi(&all);
        let err = text(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(
            !err.contains("unexpected argument")
                && !err.contains("mean_field")
                && !err.contains("invalid float"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn a_missing_classifier_is_a_diagnostic_before_the_fit() {
    let out = vi(&[
        "fit",
        "models/vae.vi",
        "--classifier",
        "no/such.safetensors",
        "--epochs",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("vi::io::classifier") && err.contains("no/such.safetensors"),
        "{err}"
    );
    assert!(!err.contains("epoch 1/1"), "the fit did not start:\n{err}");
    // The kept MNIST classifier reads 784 pixels; vae.vi's digits have 64.
    let out = vi(&[
        "fit",
        "models/vae.vi",
        "--classifier",
        "benches/classifiers/mnist_mlp.safetensors",
        "--epochs",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("reads 784 pixels") && err.contains("images of 64 pixels"),
        "{err}"
    );
}

#[test]
fn a_missing_model_file_is_a_diagnostic() {
    let out = vi(&["check", "models/no_such_model.vi"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot read model file"));
}

#[test]
fn graph_prints_text_and_dot() {
    let out = vi(&["graph", "models/gmm.vi"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("c[i] ~ Categorical"));
    let out = vi(&["graph", "models/gmm.vi", "--format", "dot"]);
    assert_eq!(out.status.code(), Some(0));
    let dot = text(&out.stdout);
    assert!(dot.starts_with("digraph \"gmm\""));
    assert!(dot.contains("cluster_plate0"));
}

#[test]
fn data_flags_bind_and_rebind_dimensions() {
    let anchor = "../shared/bench/anchors/data/w2_linreg_seed0.csv";
    if !Path::new(env!("CARGO_MANIFEST_DIR")).join(anchor).exists() {
        eprintln!("skipped: {anchor} is not here");
        return;
    }
    let out = vi(&["check", "models/linreg.vi", "--data", anchor]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let summary = text(&out.stdout);
    assert!(summary.contains("real[N=10000, D=10]"), "{summary}");
    // An explicit column choice binds D to the number of columns chosen.
    let x = format!("X={anchor}:x0,x1,x2");
    let y = format!("y={anchor}");
    let out = vi(&["check", "models/linreg.vi", "--data", &x, "--data", &y]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("real[N=10000, D=3]"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn fit_writes_the_contract_files_and_sample_reads_them() {
    let dir = std::env::temp_dir().join(format!("vi-cli-fit-{}", std::process::id()));
    for (model, method) in [("gmm", "cavi"), ("eight_schools", "svi")] {
        let out = dir.join(model);
        let out_s = out.to_string_lossy().to_string();
        let r = vi(&[
            "fit",
            &format!("models/{model}.vi"),
            "--out",
            &out_s,
            "--steps",
            "300",
        ]);
        // 0: converged; 3: stopped at the step cap (eight schools' noisy ELBO).
        assert!(matches!(r.status.code(), Some(0 | 3)), "{}", text(&r.stderr));
        let stdout = text(&r.stdout);
        assert!(stdout.contains(&format!("method: {method}")), "{stdout}");
        for f in ["summary.json", "elbo.csv", "elbo.svg", "params.safetensors"] {
            assert!(out.join(f).exists(), "{model}: no {f}");
        }
        let summary: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
        for key in [
            "model",
            "method",
            "converged",
            "iterations",
            "elbo",
            "time_s",
            "latents",
            "params",
            "status",
            "psis_khat",
            "iw_bound",
        ] {
            assert!(summary.get(key).is_some(), "{model}: summary.json has no {key}");
        }
        assert_eq!(summary["method"], method);
        assert!(summary["psis_khat"].is_number(), "{model}: no k-hat");
        let svg = std::fs::read_to_string(out.join("elbo.svg")).unwrap();
        assert!(svg.contains("<svg"));
        if method == "svi" {
            // The noisy per-step estimates under their moving average, steps in whole numbers.
            assert!(svg.contains("moving average of 100 steps"), "{model}: {svg}");
            let labels: Vec<&str> = svg
                .split("</text>")
                .filter_map(|t| t.rsplit('>').next().map(str::trim))
                .collect();
            // The step ticks (the ELBOs here are negative).
            let steps: Vec<&&str> = labels
                .iter()
                .filter(|l| l.parse::<f64>().is_ok_and(|x| x > 0.0))
                .collect();
            assert!(
                steps.len() >= 2 && steps.iter().all(|l| !l.contains('.')),
                "{model}: {labels:?}"
            );
        }
        let r = vi(&[
            "sample",
            &format!("models/{model}.vi"),
            "--from",
            &out_s,
            "-n",
            "20",
        ]);
        assert_eq!(r.status.code(), Some(0), "{}", text(&r.stderr));
        let csv = std::fs::read_to_string(out.join("samples.csv")).unwrap();
        assert!(csv.starts_with("draw,variable,kind,index,value"));
        assert!(
            csv.lines().any(|l| l.contains(",predictive,")),
            "{model}: no predictive draws"
        );
        // CmdStan's layout: comments, then a header of lp__ and Stan-style names, one row per
        // draw with a value for every column.
        let cmdstan = out.join("cmdstan.csv");
        let r = vi(&[
            "sample",
            &format!("models/{model}.vi"),
            "--from",
            &out_s,
            "-n",
            "20",
            "--format",
            "cmdstan",
            "--out",
            cmdstan.to_str().unwrap(),
        ]);
        assert_eq!(r.status.code(), Some(0), "{}", text(&r.stderr));
        let csv = std::fs::read_to_string(&cmdstan).unwrap();
        let rows: Vec<&str> = csv.lines().filter(|l| !l.starts_with('#')).collect();
        let header: Vec<&str> = rows[0].split(',').collect();
        assert_eq!(header[0], "lp__");
        assert!(
            header.iter().any(|h| h.ends_with("_rep.1")),
            "{model}: no replicates in {header:?}"
        );
        let latent = if model == "gmm" { "mu.1" } else { "theta_tilde.8" };
        assert!(header.contains(&latent), "{model}: no {latent} in {header:?}");
        assert_eq!(rows.len(), 21, "{model}: a header and 20 draws");
        assert!(rows[1..].iter().all(|r| r.split(',').count() == header.len()));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_same_seed_gives_the_same_numbers() {
    let dir = std::env::temp_dir().join(format!("vi-cli-seed-{}", std::process::id()));
    let mut elbos = Vec::new();
    for run in 0..2 {
        let out = dir.join(format!("r{run}"));
        let r = vi(&[
            "fit",
            "models/eight_schools.vi",
            "--seed",
            "7",
            "--steps",
            "500",
            "--out",
            &out.to_string_lossy(),
        ]);
        assert!(matches!(r.status.code(), Some(0 | 3)));
        elbos.push(std::fs::read_to_string(out.join("elbo.csv")).unwrap());
    }
    assert_eq!(elbos[0], elbos[1]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn exit_codes_say_how_a_fit_ended() {
    let dir = std::env::temp_dir().join(format!("vi-cli-exit-{}", std::process::id()));
    let out = |name: &str| dir.join(name).to_string_lossy().to_string();
    // Converged: 0.
    let r = vi(&["fit", "models/beta_bernoulli.vi", "--out", &out("a")]);
    assert_eq!(r.status.code(), Some(0), "{}", text(&r.stderr));
    // Stopped at the cap while still moving: 3.
    let r = vi(&["fit", "models/gmm.vi", "--steps", "1", "--out", &out("b")]);
    assert_eq!(r.status.code(), Some(3), "{}", text(&r.stderr));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("b/summary.json")).unwrap()).unwrap();
    assert_eq!(summary["status"], "stalled");
    // A non-finite ELBO: 4, with the diagnostic on stderr.
    let model = dir.join("diverge.vi");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(&model, "r ~ Normal(0, 10)\nz ~ Normal(exp(r * 1000), 1)\n").unwrap();
    let r = vi(&[
        "fit",
        &model.to_string_lossy(),
        "--lr",
        "50",
        "--steps",
        "200",
        "--out",
        &out("c"),
    ]);
    assert_eq!(r.status.code(), Some(4), "{}", text(&r.stderr));
    assert!(text(&r.stderr).contains("non-finite"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_vae_trains_reports_epochs_draws_its_images_and_evaluates() {
    let out_dir = std::env::temp_dir().join(format!("vi-cli-vae-{}", std::process::id()));
    let dir = out_dir.to_str().unwrap();
    let out = vi(&["fit", "models/vae.vi", "--epochs", "2", "--out", dir]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("epoch 2/2") && stderr.contains("held-out"),
        "{stderr}"
    );
    assert!(text(&out.stdout).contains("completed after"));
    for f in [
        "epochs.csv",
        "reconstructions.png",
        "samples.png",
        "params.safetensors",
    ] {
        assert!(out_dir.join(f).exists(), "{f} not written");
    }
    let csv = std::fs::read_to_string(out_dir.join("epochs.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "a header and two epochs:\n{csv}");
    let png = std::fs::read(out_dir.join("samples.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");

    let out = vi(&["eval", "models/vae.vi", "--from", dir, "-k", "20"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("log p(x) >="));
    let eval: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("eval.json")).unwrap()).unwrap();
    assert_eq!(eval["k"], 20);
    assert_eq!(eval["rows"], 179, "the held-out tenth of 1797 digits");
    assert!(eval["log_px"].as_f64().unwrap() >= eval["elbo"].as_f64().unwrap());
    std::fs::remove_dir_all(&out_dir).ok();
}

#[test]
fn holdout_needs_an_amortised_guide_and_a_fraction() {
    let dir = std::env::temp_dir().join(format!("vi-cli-holdout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = dir.join("local.vi");
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/data/gmm.csv");
    std::fs::write(
        &model,
        format!(
            "data x: real[N] from \"{}\"\nmu ~ Normal(0, 10)\nfor n in 1..N batch 100 {{\n    z[n] ~ Normal(mu, 1)\n    x[n] ~ Normal(z[n], 1)\n}}\n",
            data.display()
        ),
    )
    .unwrap();
    let out_dir = dir.join("out");
    let out = vi(&[
        "fit",
        model.to_str().unwrap(),
        "--holdout",
        "0.2",
        "--method",
        "svi",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("vi::fit::holdout") && stderr.contains("help:"),
        "{stderr}"
    );
    let out = vi(&["fit", "models/vae.vi", "--holdout", "0.95"]);
    assert_eq!(out.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).ok();
}

/// The learnables a fit wrote, by name.
fn fitted(dir: &Path) -> Vec<vi::infer::NamedTensor> {
    vi::store::read_safetensors(&dir.join("params.safetensors"))
        .expect("params.safetensors reads")
        .0
}

fn assert_same_fit(a: &Path, b: &Path) {
    let (pa, pb) = (fitted(a), fitted(b));
    assert_eq!(pa.len(), pb.len());
    for (x, y) in pa.iter().zip(&pb) {
        assert_eq!(x.name, y.name);
        let worst = x
            .values
            .iter()
            .zip(&y.values)
            .map(|(u, v)| (u - v).abs())
            .fold(0.0, f64::max);
        assert!(worst <= 1e-6, "{}: resumed differs by {worst}", x.name);
    }
    let trace = |d: &Path| std::fs::read_to_string(d.join("elbo.csv")).unwrap();
    assert_eq!(trace(a), trace(b), "the ELBO traces differ");
}

/// Run a fit to its end, writing to `out`.
fn uninterrupted_fit(args: &[&str], out: &Path) {
    let out = out.to_string_lossy().to_string();
    let all: Vec<&str> = args.iter().copied().chain(["--out", &out]).collect();
    let r = vi(&all);
    assert_eq!(r.status.code(), Some(0), "{}", text(&r.stderr));
}

/// Start a fit, wait for its first checkpoint, then signal it.
fn interrupted_fit(args: &[&str], out: &Path, signal: libc::c_int) -> std::process::ExitStatus {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vinf"))
        .args(args)
        .args(["--out", &out.to_string_lossy()])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the vi binary runs");
    let checkpoint = out.join("checkpoint.safetensors");
    while !checkpoint.exists() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the fit ended before its first checkpoint"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    // SAFETY: kill(2) on our own child's pid.
    let sent = unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    assert_eq!(sent, 0, "the signal was sent");
    child.wait().unwrap()
}

#[test]
fn a_killed_fit_resumes_to_the_same_result() {
    let dir = std::env::temp_dir().join(format!("vi-cli-resume-{}", std::process::id()));
    let args = [
        "fit",
        "models/eight_schools.vi",
        "--steps",
        "60000",
        "--tol",
        "0",
        "--checkpoint-every",
        "500",
    ];
    let whole = dir.join("whole");
    uninterrupted_fit(&args, &whole);
    assert!(
        whole.join("checkpoint.safetensors").exists(),
        "a finished fit keeps its final state, to be extended"
    );

    let cut = dir.join("cut");
    let status = interrupted_fit(&args, &cut, libc::SIGKILL);
    assert_eq!(status.code(), None, "killed by a signal");
    assert!(cut.join("checkpoint.safetensors").exists());
    assert!(!cut.join("summary.json").exists(), "killed before the end");

    // Other settings with --resume are refused: the run keeps its own; other flags are a
    // usage error.
    let cut_arg = cut.to_string_lossy().to_string();
    let r = vi(&[
        "fit",
        "models/eight_schools.vi",
        "--resume",
        &cut_arg,
        "--lr",
        "0.1",
    ]);
    assert_eq!(r.status.code(), Some(1), "{}", text(&r.stderr));
    assert!(
        text(&r.stderr).contains("cannot change them"),
        "{}",
        text(&r.stderr)
    );
    let r = vi(&[
        "fit",
        "models/eight_schools.vi",
        "--resume",
        &cut_arg,
        "--out",
        "x",
    ]);
    assert_eq!(r.status.code(), Some(2), "{}", text(&r.stderr));
    // Another model is refused.
    let r = vi(&["fit", "models/linreg.vi", "--resume", &cut_arg]);
    assert_eq!(r.status.code(), Some(1));
    assert!(text(&r.stderr).contains("vi::resume"), "{}", text(&r.stderr));

    let r = vi(&["fit", "models/eight_schools.vi", "--resume", &cut_arg]);
    assert_eq!(r.status.code(), Some(0), "{}", text(&r.stderr));
    assert!(text(&r.stderr).contains("resuming"));
    assert_same_fit(&whole, &cut);
    // A finished fit resumes only to be extended.
    let r = vi(&["fit", "models/eight_schools.vi", "--resume", &cut_arg]);
    assert_eq!(r.status.code(), Some(1));
    assert!(
        text(&r.stderr).contains("already ended (completed) after 60000 steps"),
        "{}",
        text(&r.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_finished_fit_is_extended_by_more_steps() {
    let dir = std::env::temp_dir().join(format!("vi-cli-extend-{}", std::process::id()));
    let out = dir.to_string_lossy().to_string();
    let model = "models/logreg.vi";
    let r = vi(&[
        "fit",
        model,
        "--guide",
        "mean-field",
        "--steps",
        "400",
        "--tol",
        "0",
        "--out",
        &out,
    ]);
    assert_eq!(r.status.code(), Some(0), "{}", text(&r.stderr));
    let before = std::fs::read_to_string(dir.join("elbo.csv")).unwrap();
    let r = vi(&["fit", model, "--resume", &out, "--steps", "250", "--tol", "0"]);
    assert_eq!(r.status.code(), Some(0), "{}", text(&r.stderr));
    assert!(
        text(&r.stderr).contains("extending the fit"),
        "{}",
        text(&r.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["iterations"], 650);
    assert_eq!(summary["status"], "completed");
    // The trace goes on from where the first fit ended.
    let after = std::fs::read_to_string(dir.join("elbo.csv")).unwrap();
    assert_eq!(after.lines().count(), 651);
    assert!(
        after.starts_with(&before),
        "the first 400 steps are the first fit's"
    );
    // With the stop rule on, the extension still runs until it is met again or the steps end.
    let r = vi(&["fit", model, "--resume", &out, "--steps", "20000"]);
    assert!(matches!(r.status.code(), Some(0 | 3)), "{}", text(&r.stderr));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    let n = summary["iterations"].as_u64().unwrap();
    assert!(n > 650 + 100 && n <= 20650, "{n}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ctrl_c_checkpoints_a_minibatch_fit_that_resumes_exactly() {
    let dir = std::env::temp_dir().join(format!("vi-cli-ctrlc-{}", std::process::id()));
    let args = [
        "fit",
        "models/vae.vi",
        "--epochs",
        "30",
        "--checkpoint-every",
        "20",
    ];
    let whole = dir.join("whole");
    uninterrupted_fit(&args, &whole);

    let cut = dir.join("cut");
    let status = interrupted_fit(&args, &cut, libc::SIGINT);
    assert_eq!(status.code(), Some(130), "Ctrl-C ends with 130");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cut.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["status"], "interrupted");
    assert!(cut.join("checkpoint.safetensors").exists());

    let r = vi(&["fit", "models/vae.vi", "--resume", &cut.to_string_lossy()]);
    assert_eq!(r.status.code(), Some(0), "{}", text(&r.stderr));
    assert_same_fit(&whole, &cut);
    let epochs = |d: &Path| -> Vec<String> {
        std::fs::read_to_string(d.join("epochs.csv"))
            .unwrap()
            .lines()
            // All but the seconds column.
            .map(|l| {
                l.split(',')
                    .enumerate()
                    .filter(|(k, _)| *k != 2)
                    .map(|(_, c)| c)
                    .collect()
            })
            .collect()
    };
    assert_eq!(epochs(&whole), epochs(&cut));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn work_that_cannot_fit_in_memory_is_refused_with_an_estimate() {
    let dir = std::env::temp_dir().join(format!("vi-cli-memory-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Ten billion latent values: hundreds of GiB on any machine this runs on.
    let model = dir.join("huge.vi");
    std::fs::write(&model, "z ~ Normal(0, 1) [100000, 100000]\n").unwrap();
    let out = dir.join("out").to_string_lossy().to_string();
    let r = vi(&["fit", &model.to_string_lossy(), "--out", &out]);
    let err = text(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert!(
        err.contains("vi::fit::memory") && err.contains("GiB of memory"),
        "{err}"
    );
    assert!(err.contains("variational parameters of `z`"), "{err}");
    // A full-rank guide over 50,000 values: its Cholesky factor alone is ~56 GiB.
    let wide = dir.join("wide.vi");
    std::fs::write(&wide, "z ~ Normal(0, 1) [50000]\n").unwrap();
    let r = vi(&[
        "fit",
        &wide.to_string_lossy(),
        "--guide",
        "full-rank",
        "--out",
        &out,
    ]);
    let err = text(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert!(
        err.contains("Cholesky factor") && err.contains("field guide"),
        "{err}"
    );

    // A limit below what a small fit needs: the data file is refused before it is read, and
    // the fit before it starts.
    let run = |limit: &str, args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_vinf"))
            .args(args)
            .env("VI_MEMORY_LIMIT", limit)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap()
    };
    let r = run("1M", &["fit", "models/vae.vi", "--out", &out]);
    assert_eq!(r.status.code(), Some(1));
    assert!(
        text(&r.stderr).contains("vi::data::too_large"),
        "{}",
        text(&r.stderr)
    );
    let r = run("8M", &["fit", "models/gmm.vi", "--out", &out]);
    assert_eq!(r.status.code(), Some(1));
    assert!(text(&r.stderr).contains("vi::fit::memory"), "{}", text(&r.stderr));
    let r = run("none", &["fit", "models/gmm.vi", "--out", &out]);
    assert_eq!(r.status.code(), Some(0), "{}", text(&r.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn learning_rate_back_off_survives_what_stops_a_plain_fit() {
    let dir = std::env::temp_dir().join(format!("vi-cli-backoff-{}", std::process::id()));
    let out = dir.to_string_lossy().to_string();
    let args = [
        "fit",
        "models/linreg.vi",
        "--method",
        "svi",
        "--lr",
        "20",
        "--steps",
        "3000",
        "--out",
        &out,
    ];
    let r = vi(&args);
    assert_eq!(r.status.code(), Some(4), "{}", text(&r.stderr));
    assert!(
        text(&r.stderr).contains("--lr-backoff"),
        "the diagnostic suggests it"
    );
    let mut with: Vec<&str> = args.to_vec();
    with.extend(["--lr-backoff", "10"]);
    let r = vi(&with);
    let err = text(&r.stderr);
    assert!(matches!(r.status.code(), Some(0 | 3)), "{err}");
    assert!(err.contains("learning rate halved"), "{err}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert!(summary["elbo"].as_f64().unwrap().is_finite());
    let notes = summary["notes"].as_array().unwrap();
    assert!(
        notes.iter().any(|n| n.as_str().unwrap().contains("halved")),
        "{notes:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--method pathfinder` on a model it cannot see whole (networks) is refused with a located
/// diagnostic, exit 1, before anything is fitted.
#[test]
fn pathfinder_refuses_a_model_with_networks_at_the_network() {
    let out = vi(&[
        "fit",
        "models/vae.vi",
        "--method",
        "pathfinder",
        "--out",
        "/tmp/vi-pf-refused",
    ]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("vi::pathfinder::unsupported"), "{err}");
    assert!(err.contains("models/vae.vi:13:1"), "{err}");
    assert!(err.contains("help:"), "{err}");
}
