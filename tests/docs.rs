//! Every model example in the documentation (a fenced block marked ```vi in README.md or
//! docs/*.md) is a complete model that checks and fits: the reference cannot drift from the
//! language. Examples that declare data without a file run on small synthetic data drawn in
//! each declared type (free dimensions 6 and N, the rows, 120; scalar counts 3; integers 1 to
//! 3 and categories 0 to 2, so both `g[n] - 1` and `c[i]` index an axis of a scalar count or a
//! free dimension), for at most 300 steps: each must fit to a finite ELBO.

use std::path::Path;

use vi::dist::Domain;

fn vi_blocks(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        match (&mut current, line.trim_start()) {
            (None, l) if l.starts_with("```vi") && l.trim_end() == "```vi" => {
                current = Some((i + 1, String::new()))
            }
            (Some(_), l) if l.starts_with("```") => out.push(current.take().expect("open block")),
            (Some((_, body)), _) => {
                body.push_str(line);
                body.push('\n');
            }
            _ => {}
        }
    }
    out
}

#[test]
fn every_model_in_the_docs_checks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    for e in std::fs::read_dir(root.join("docs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "md") {
            files.push(p);
        }
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("docs_examples");
    std::fs::create_dir_all(&dir).unwrap();
    let mut checked = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for (line, body) in vi_blocks(&text) {
            let name = format!(
                "{}_{line}.vi",
                f.file_stem().unwrap().to_string_lossy().to_lowercase()
            );
            let path = dir.join(name);
            std::fs::write(&path, &body).unwrap();
            let opts = vi::LoadOptions {
                use_defaults: false,
                ..vi::LoadOptions::default()
            };
            let loaded = match vi::load(&path, &opts) {
                Ok(l) => l,
                Err(d) => panic!(
                    "{}:{line}: the example does not check:\n{}",
                    f.display(),
                    d.render_plain()
                ),
            };
            run(&path, &loaded, &format!("{}:{line}", f.display()));
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} examples found");
}

/// One synthetic value of a declared data type (`k` counts values drawn so far).
fn synthetic(domain: Domain, k: usize) -> f64 {
    let u = ((k * 7919 + 13) % 1000) as f64 / 1000.0 + 0.0005;
    match domain {
        Domain::Binary => (k % 2) as f64,
        Domain::Count => (k % 6) as f64,
        Domain::Category => (k % 3) as f64,
        Domain::Int => (k % 3 + 1) as f64,
        Domain::Unit => u,
        Domain::Positive => 0.2 + 3.0 * u,
        Domain::Interval(lo, hi) => lo + (hi - lo) * u,
        _ => 4.0 * u - 2.0,
    }
}

/// Bind every declared data to synthetic values and fit for a few hundred steps.
fn run(path: &Path, loaded: &vi::Loaded, label: &str) {
    let dir = path.with_extension("data");
    std::fs::create_dir_all(&dir).unwrap();
    let mut bindings = Vec::new();
    let mut k = 0;
    for d in &loaded.model.data {
        // Scalar counts are dimensions here (`data J: count`).
        let dims: Vec<usize> = d
            .shape
            .iter()
            .map(|x| x.value().unwrap_or(if x.to_string() == "N" { 120 } else { 6 }))
            .collect();
        let rows = if dims.is_empty() { 1 } else { dims[0] };
        let cols: usize = dims.iter().skip(1).product();
        let names: Vec<String> = if dims.len() <= 1 {
            vec![d.name.clone()]
        } else {
            (0..cols).map(|c| format!("{}{c}", d.name)).collect()
        };
        let mut csv = names.join(",") + "\n";
        for _ in 0..rows {
            let row: Vec<String> = (0..names.len())
                .map(|_| {
                    k += 1;
                    let v = match (dims.is_empty(), d.domain) {
                        (true, Domain::Count) if d.name == "N" => 120.0,
                        (true, Domain::Count) => 3.0,
                        _ => synthetic(d.domain, k),
                    };
                    format!("{v}")
                })
                .collect();
            csv += &(row.join(",") + "\n");
        }
        let file = dir.join(format!("{}.csv", d.name));
        std::fs::write(&file, csv).unwrap();
        bindings.push(vi::data::Binding::parse(&format!("{}={}", d.name, file.display())).unwrap());
    }
    let opts = vi::LoadOptions {
        use_defaults: false,
        require_data: true,
        bindings,
    };
    let loaded = vi::load(path, &opts).unwrap_or_else(|d| {
        panic!(
            "{label}: the example does not load on synthetic data:\n{}",
            d.render_plain()
        )
    });
    let mut fit = vi::infer::FitOptions::from_settings(&loaded.model.settings, &loaded.model);
    fit.steps = Some(fit.steps.map_or(300, |s| s.min(300)));
    let out = vi::infer::fit(&loaded, &fit, &mut |_| {})
        .unwrap_or_else(|d| panic!("{label}: the example does not fit:\n{}", d.render_plain()));
    assert!(out.elbo.is_finite(), "{label}: ELBO {}", out.elbo);
}
