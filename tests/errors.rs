//! Every file in `tests/errors/` is a mistake a user can make. Each must fail to load with a
//! located diagnostic (a labelled span and a help line) whose code the file names in its
//! `# expect:` line; the snapshot shows the source beside the rendered diagnostic.
//!
//! Header lines: `# expect: CODE` (required) and `# args: --data NAME=PATH ...` (optional).

use vi::data::Binding;
use vi::LoadOptions;

fn header(src: &str, key: &str) -> Option<String> {
    src.lines()
        .take_while(|l| l.starts_with('#'))
        .find_map(|l| l.strip_prefix(&format!("# {key}:")).map(|v| v.trim().to_string()))
}

fn options(src: &str) -> LoadOptions {
    let mut opts = LoadOptions::default();
    if let Some(args) = header(src, "args") {
        let mut words = args.split_whitespace();
        while let Some(w) = words.next() {
            match w {
                "--data" => {
                    let b = words.next().expect("--data takes a value");
                    opts.bindings
                        .push(Binding::parse(b).expect("a valid --data argument"));
                }
                "--require-data" => opts.require_data = true,
                other => panic!("unknown argument {other} in an error test header"),
            }
        }
    }
    opts
}

#[test]
fn every_mistake_has_a_located_diagnostic() {
    insta::glob!("errors/*.vi", |path| {
        // Lossy: one of the mistakes is a file that is not UTF-8.
        let src = String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned();
        let expect =
            header(&src, "expect").unwrap_or_else(|| panic!("{} has no `# expect:` line", path.display()));
        let rel = path.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap_or(path);
        let result = vi::load(rel, &options(&src));
        let diags = match result {
            Ok(_) => panic!("{} loaded without errors", rel.display()),
            Err(d) => d,
        };
        let first = diags.iter().next().unwrap();
        assert_eq!(
            first.code,
            expect,
            "{}: first diagnostic is {}",
            rel.display(),
            diags.render_plain()
        );
        for d in diags.iter() {
            assert!(
                d.source.is_some(),
                "{}: `{}` has no source",
                rel.display(),
                d.message
            );
            assert!(
                d.primary_span().is_some(),
                "{}: `{}` has no primary label",
                rel.display(),
                d.message
            );
            assert!(d.help.is_some(), "{}: `{}` has no help", rel.display(), d.message);
        }
        insta::assert_snapshot!(format!("{src}\n---\n{}", diags.render_plain()));
    });
}
