//! Mistakes that once gave a wrong answer with exit code 0, or crashed: each is refused by
//! `vinf check` and by both engines (CAVI and SVI) with a located diagnostic, never a panic.

use std::process::{Command, Output};

fn vinf(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vinf"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the vinf binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

/// `vinf check` and a fit by each engine exit 1 with the diagnostic `code`, located and with a
/// help line, and never panic.
fn refused_everywhere(model: &str, code: &str) {
    let runs: [&[&str]; 3] = [
        &["check", model],
        &[
            "fit",
            model,
            "--method",
            "cavi",
            "--steps",
            "5",
            "--out",
            "target/no_silent_errors",
        ],
        &[
            "fit",
            model,
            "--method",
            "svi",
            "--steps",
            "5",
            "--out",
            "target/no_silent_errors",
        ],
    ];
    for args in runs {
        let out = vinf(args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(code), "{args:?}: expected {code} in {err}");
        assert!(err.contains("╭─["), "{args:?}: no location in {err}");
        assert!(err.contains("help:"), "{args:?}: no help in {err}");
        assert!(!err.contains("internal error"), "{args:?}: {err}");
    }
}

#[test]
fn integer_data_out_of_an_axis_is_refused_by_check_and_both_engines() {
    for model in [
        "tests/errors/index_data_above.vi",
        "tests/errors/index_data_negative.vi",
        "tests/errors/index_data_one_based.vi",
        "tests/errors/index_data_gather.vi",
        "tests/errors/index_data_sum.vi",
    ] {
        refused_everywhere(model, "vi::index::data_out_of_range");
    }
}

/// A scratch folder under target/ for generated models and data.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/no_silent_errors")
        .join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_from_clause_picks_its_column() {
    let dir = scratch("columns");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/models/data/eight_schools.csv"),
        dir.join("schools.csv"),
    )
    .unwrap();
    let model = dir.join("pick.vi");
    std::fs::write(
        &model,
        "data yy: real[J] from \"schools.csv\" column \"y\"\n\
         data s: positive[J] from \"schools.csv\" columns \"sigma\"\n\
         mu ~ Normal(0, 5)\nfor j in 1..J {\n    yy[j] ~ Normal(mu, s[j])\n}\n",
    )
    .unwrap();
    let out = vinf(&["check", model.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(stdout.contains("J=8"), "{stdout}");
    assert!(stdout.contains("column y"), "{stdout}");
    // The same table, whole, into a 1-D name: refused, with the right declaration suggested.
    std::fs::write(&model, "data yy: real[J]\nmu ~ Normal(0, 5)\n").unwrap();
    let arg = format!("yy={}", dir.join("schools.csv").display());
    let out = vinf(&["check", model.to_str().unwrap(), "--data", &arg]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("vi::data::rank") && err.contains("real[J, 3]"),
        "{err}"
    );
}

/// Generated models of the sizes that used to overflow the stack (and abort with exit 134):
/// 10^5 nested unary minus, a 10^5-term sum, 10^4 nested parentheses, each of a constant and
/// of a latent. Each must check, print as a graph, and fit a few steps by both engines (CAVI
/// may refuse a model as not conjugate, with a diagnostic; it must not crash).
#[test]
fn huge_and_deep_expressions_check_print_and_fit() {
    let dir = scratch("deep");
    let n = 100_000;
    let cases = [
        ("neg_const", format!("x ~ Normal({}1, 1)\n", "-".repeat(n))),
        (
            "sum_const",
            format!("x ~ Normal({}, 1)\n", vec!["1"; n].join("+")),
        ),
        (
            "paren_const",
            format!("x ~ Normal({}1{}, 1)\n", "(".repeat(10_000), ")".repeat(10_000)),
        ),
        (
            "neg_latent",
            format!("mu ~ Normal(0, 1)\nx ~ Normal({}mu, 1)\n", "-".repeat(n)),
        ),
        (
            "sum_latent",
            format!(
                "mu ~ Normal(0, 1)\nx ~ Normal({}, 1)\n",
                vec!["mu"; n].join(" + ")
            ),
        ),
        (
            "paren_latent",
            format!(
                "mu ~ Normal(0, 1)\nx ~ Normal({}mu{}, 1)\n",
                "(".repeat(10_000),
                ")".repeat(10_000)
            ),
        ),
    ];
    for (name, src) in cases {
        let path = dir.join(format!("{name}.vi"));
        std::fs::write(&path, src).unwrap();
        let p = path.to_str().unwrap();
        let (svi_out, cavi_out) = (
            dir.join(format!("out_{name}_svi")),
            dir.join(format!("out_{name}_cavi")),
        );
        let check = vinf(&["check", p]);
        assert_eq!(check.status.code(), Some(0), "{name}: {}", text(&check.stderr));
        let graph = vinf(&["graph", p]);
        assert_eq!(graph.status.code(), Some(0), "{name}: {}", text(&graph.stderr));
        let svi = vinf(&[
            "fit",
            p,
            "--method",
            "svi",
            "--steps",
            "2",
            "--tol",
            "0",
            "--out",
            svi_out.to_str().unwrap(),
        ]);
        assert_eq!(svi.status.code(), Some(0), "{name} svi: {}", text(&svi.stderr));
        let cavi = vinf(&[
            "fit",
            p,
            "--method",
            "cavi",
            "--steps",
            "2",
            "--tol",
            "0",
            "--out",
            cavi_out.to_str().unwrap(),
        ]);
        let err = text(&cavi.stderr);
        assert!(
            cavi.status.code() == Some(0) || (cavi.status.code() == Some(1) && err.contains("vi::cavi::")),
            "{name} cavi: {:?} {err}",
            cavi.status.code()
        );
    }
}

/// The library's own phases on the same sizes: parse, check and lower, print, and drop the tree.
#[test]
fn the_library_handles_deep_trees_without_the_command_line() {
    let n = 100_000;
    let text = format!(
        "mu ~ Normal(0, 1)\nx ~ Normal({}mu, {})\n",
        "-".repeat(n),
        vec!["1"; n].join("+")
    );
    let program = vi::syntax::parse_program(&text).unwrap();
    drop(program);
    let loaded = vi::load_str(
        "deep",
        "deep.vi",
        &text,
        std::path::Path::new("."),
        &vi::LoadOptions::default(),
    )
    .unwrap();
    assert!(!vi::graph::to_text(&loaded.model).is_empty());
}

#[test]
fn latents_outside_a_parameters_support_are_refused_by_check_and_both_engines() {
    for model in [
        "tests/errors/support_latent_scale.vi",
        "tests/errors/support_latent_rate.vi",
        "tests/errors/support_latent_expression.vi",
        "tests/errors/support_latent_unit.vi",
        "tests/errors/support_latent_simplex.vi",
    ] {
        refused_everywhere(model, "vi::support::latent_argument");
    }
}

fn warnings_of(text: &str) -> Vec<&'static str> {
    let loaded = vi::load_str(
        "m",
        "m.vi",
        text,
        std::path::Path::new("."),
        &vi::LoadOptions::default(),
    )
    .unwrap_or_else(|d| panic!("{}", d.render_plain()));
    loaded.model.warnings.iter().map(|w| w.code).collect()
}

#[test]
fn supports_that_are_proven_say_nothing_and_the_rest_warn() {
    // Positive by construction: no warning.
    let fine = "data d: positive[N]\nmu ~ Normal(0, 1)\ns ~ HalfNormal(1)\nw ~ Beta(1, 1)\n\
                v ~ Normal(0, 1) [3]\n\
                a ~ Normal(mu, exp(mu))\nb ~ Normal(0, softplus(mu) + s * s)\n\
                c ~ Bernoulli(sigmoid(mu) * w)\nk ~ Categorical(softmax(v))\n\
                e ~ Poisson(s * 2 + exp(mu) / (1 + s))\nf ~ Normal(0, sqrt(s) + mu ^ 2 + 0.5)\n\
                for i in 1..N {\n    g[i] ~ Normal(0, d[i] * s)\n}\n";
    assert_eq!(warnings_of(fine), Vec::<&str>::new());
    // Not provable: a warning each, and the model still loads.
    let unsure = "param p: real\nmu ~ Normal(0, 1)\na ~ Normal(0, p)\nb ~ Normal(0, abs(mu))\n";
    assert_eq!(
        warnings_of(unsure),
        vec!["vi::support::unproven", "vi::support::unproven"]
    );
    // A fractional power of a value that may be negative.
    let pow = "mu ~ Normal(0, 1)\nx ~ Normal(mu ^ 1.5, 1)\n";
    assert_eq!(warnings_of(pow), vec!["vi::pow::negative_base"]);
    assert_eq!(
        warnings_of("s ~ HalfNormal(1)\nx ~ Normal(s ^ 1.5, 1)\n"),
        Vec::<&str>::new()
    );
}

#[test]
fn warnings_are_printed_by_check_without_failing() {
    let dir = scratch("warnings");
    let model = dir.join("warn.vi");
    std::fs::write(&model, "param p: real\nx ~ Normal(0, p)\n").unwrap();
    let out = vinf(&["check", model.to_str().unwrap()]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("vi::support::unproven") && err.contains("help:"),
        "{err}"
    );
}

/// `x ^ 2` of centred (negative) data used to be `exp(2 ln x)`, NaN at step 1 (exit 4): it is
/// now repeated multiplication, and fits exactly as `x * x` does.
#[test]
fn whole_powers_of_negative_values_fit_as_products() {
    let dir = scratch("powers");
    let mut csv = String::from("x,y\n");
    for i in 0..40 {
        let x = (i as f64 - 20.0) / 10.0;
        csv.push_str(&format!("{x},{}\n", (1.5 + x * x) as i64));
    }
    std::fs::write(dir.join("years.csv"), csv).unwrap();
    let mut tables = Vec::new();
    for (name, term) in [
        ("pow", "x[i] ^ 2"),
        ("product", "x[i] * x[i]"),
        ("call", "pow(x[i], 2)"),
    ] {
        let model = dir.join(format!("{name}.vi"));
        std::fs::write(
            &model,
            format!(
                "data x: real[N] from \"years.csv\"\ndata y: count[N] from \"years.csv\"\n\
                 a ~ Normal(0, 1)\nb ~ Normal(0, 1)\nfor i in 1..N {{\n    y[i] ~ Poisson(exp(a + b * {term}))\n}}\n"
            ),
        )
        .unwrap();
        let out_dir = dir.join(format!("out_{name}"));
        let out = vinf(&[
            "fit",
            model.to_str().unwrap(),
            "--steps",
            "200",
            "--tol",
            "0",
            "--seed",
            "3",
            "--out",
            out_dir.to_str().unwrap(),
        ]);
        let stdout = text(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{name}: {stdout}{}",
            text(&out.stderr)
        );
        let table: Vec<String> = stdout
            .lines()
            .filter(|l| l.trim_start().starts_with("a ") || l.trim_start().starts_with("b "))
            .map(str::to_string)
            .collect();
        assert_eq!(table.len(), 2, "{stdout}");
        tables.push(table);
    }
    assert_eq!(tables[0], tables[1]);
    assert_eq!(tables[0], tables[2]);
}

/// At 0 the derivative of `p ^ k` (k >= 1) is 0 or 1, not the NaN of `exp(k ln p)`.
#[test]
fn powers_have_their_derivative_at_zero() {
    let dir = scratch("powers_at_zero");
    for (name, term) in [
        ("two", "p ^ 2"),
        ("three", "p ^ 3"),
        ("one", "p ^ 1"),
        ("half_up", "q ^ 1.5"),
    ] {
        let model = dir.join(format!("{name}.vi"));
        std::fs::write(
            &model,
            format!("param p: real = 0\nparam q: real = 0\nmu ~ Normal(0, 1)\nx ~ Normal(mu + {term}, 1)\n"),
        )
        .unwrap();
        let out_dir = dir.join(format!("out_{name}"));
        let out = vinf(&[
            "fit",
            model.to_str().unwrap(),
            "--method",
            "svi",
            "--steps",
            "20",
            "--tol",
            "0",
            "--out",
            out_dir.to_str().unwrap(),
        ]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{name}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        // The derivative at 0 is exactly 0 for p^2, p^3 and q^1.5, so the param never moves
        // from 0 (a NaN or a wrong derivative would move it or end the fit); p^1 moves.
        let summary: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out_dir.join("summary.json")).unwrap()).unwrap();
        let value = |n: &str| summary["params"][n]["values"][0].as_f64().unwrap();
        let (moved, still) = if name == "half_up" { ("q", "p") } else { ("p", "q") };
        assert_eq!(value(still), 0.0, "{name}: `{still}` is not in the term");
        if name == "one" {
            assert!(
                value(moved) != 0.0 && value(moved).is_finite(),
                "{name}: {}",
                value(moved)
            );
        } else {
            assert_eq!(value(moved), 0.0, "{name}: the derivative at 0 is not 0");
        }
    }
}

/// A mistake far along a 100,000-character line is rendered around its place (the renderer
/// cannot pad to such a column, and used to panic), with `…` for what is left out.
#[test]
fn mistakes_on_very_long_lines_are_shown_as_excerpts() {
    let dir = scratch("long_lines");
    let n = 100_000;
    let cases = [
        (
            "parse",
            format!("x ~ Normal({}1 1)\n", "-".repeat(n)),
            "vi::parse::unexpected_token",
        ),
        (
            "name",
            format!("x ~ Normal({} + nope, 1)\n", vec!["1"; n / 2].join("+")),
            "vi::name::undefined",
        ),
    ];
    for (name, src, code) in cases {
        let path = dir.join(format!("{name}.vi"));
        std::fs::write(&path, src).unwrap();
        let out = vinf(&["check", path.to_str().unwrap()]);
        let err = text(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{name}: {}",
            &err[..err.len().min(2000)]
        );
        assert!(
            err.contains(code) && err.contains('…') && err.contains("help:"),
            "{name}"
        );
        assert!(err.len() < 5_000, "{name}: the long line is shown whole");
    }
}

#[test]
fn the_reason_for_gradients_names_what_was_asked() {
    // `mu` is conjugate but `s` is not: without `--method`, the reason must not invent one.
    let dir = scratch("reasons");
    let model = dir.join("mixed.vi");
    std::fs::write(
        &model,
        format!(
            "data x: real[N] from \"{}\"\nmu ~ Normal(0, 10)\ns ~ HalfNormal(5)\nfor i in 1..N {{\n    x[i] ~ Normal(mu, s)\n}}\n",
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/data/gmm.csv").display()
        ),
    )
    .unwrap();
    let out_dir = dir.join("out");
    let fit = |extra: &[&str]| {
        let mut args = vec!["fit", model.to_str().unwrap(), "--steps", "200", "--out"];
        args.push(out_dir.to_str().unwrap());
        args.extend_from_slice(extra);
        let r = vinf(&args);
        assert!(matches!(r.status.code(), Some(0 | 3)), "{}", text(&r.stderr));
        text(&r.stdout)
    };
    let auto = fit(&[]);
    let line = auto.lines().find(|l| l.trim_start().starts_with("mu:")).unwrap();
    assert!(
        line.contains("other latents are not conjugate") && !line.contains("--method"),
        "{line}"
    );
    let asked = fit(&["--method", "svi"]);
    let line = asked.lines().find(|l| l.trim_start().starts_with("mu:")).unwrap();
    assert!(line.contains("`--method svi`"), "{line}");
}
