//! Every model example in the documentation (a fenced block marked ```vi in README.md or
//! docs/*.md) is a complete model that checks: the reference cannot drift from the language.

use std::path::Path;

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
            if let Err(d) = vi::load(&path, &opts) {
                panic!(
                    "{}:{line}: the example does not check:\n{}",
                    f.display(),
                    d.render_plain()
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} examples found");
}
