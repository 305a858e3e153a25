//! Random well-formed models (tests/common/random_model.rs, also the `models` fuzz target) through
//! `check`, `graph` and a 10-step `fit`, in process: a diagnostic is fine, a panic is a failure.
//! Replays a fixed set of seeds and every input saved in `tests/fuzz_corpus/models/` (fuzzer
//! bytes; a `.vi` file there is model text, run without data).

#[path = "common/random_model.rs"]
mod random_model;

use std::path::{Path, PathBuf};

use random_model::{drive, random_model, Choices};

/// Seeds whose models panic or hang today, each a bug to fix (then take it off this list).
/// None now: 1, 61 and 171 (CAVI on a likelihood of data alone in a family it has no update
/// for) and 174 (densities.svg's axis narrower than the floats' spacing) are fixed.
const KNOWN_FAILURES: &[u64] = &[];

/// How many seeds to replay; `VI_RANDOM_SEEDS=N` replays more (or fewer).
fn seeds() -> u64 {
    std::env::var("VI_RANDOM_SEEDS").map_or(300, |s| s.parse().expect("VI_RANDOM_SEEDS: a number"))
}

fn scratch(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("random_models")
        .join(name)
}

/// Runs `f`, returning the panic's message if it panics.
fn panics(f: impl FnOnce()) -> Option<String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .err()
        .map(|e| {
            e.downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        })
}

#[test]
fn random_models_do_not_panic() {
    let mut failures = Vec::new();
    for seed in (0..seeds()).filter(|s| !KNOWN_FAILURES.contains(s)) {
        let (source, files) = random_model(&mut Choices::seeded(seed));
        if let Some(msg) = panics(|| drive(&source, &files, &scratch(&format!("seed{seed}")))) {
            failures.push(format!("seed {seed}: {msg}\n{source}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} panicking models:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn saved_crashes_do_not_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_corpus/models");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    let mut failures = Vec::new();
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        if file.starts_with('.') {
            continue;
        }
        let bytes = std::fs::read(&path).expect("a corpus file");
        let (source, files) = if file.ends_with(".vi") {
            (String::from_utf8_lossy(&bytes).to_string(), Vec::new())
        } else {
            random_model(&mut Choices::bytes(&bytes))
        };
        if let Some(msg) = panics(|| drive(&source, &files, &scratch(&file))) {
            failures.push(format!("{}: {msg}\n{source}", path.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The generator is deterministic and its models mostly check.
#[test]
fn most_random_models_check() {
    let mut ok = 0;
    for seed in 0..100 {
        let a = random_model(&mut Choices::seeded(seed));
        assert_eq!(a, random_model(&mut Choices::seeded(seed)));
        let dir = scratch(&format!("check{seed}"));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in &a.1 {
            std::fs::write(dir.join(name), text).unwrap();
        }
        let opts = vi::LoadOptions {
            require_data: true,
            ..vi::LoadOptions::default()
        };
        let _ = panics(|| {
            if vi::load_str("random", "random.vi", &a.0, &dir, &opts).is_ok() {
                ok += 1;
            }
        });
    }
    assert!(ok >= 50, "only {ok} of 100 random models check");
}

/// Prints one seed's model (`SEED=12 cargo test --release --test random_models -- show --nocapture --ignored`).
#[test]
#[ignore]
fn show() {
    let seed = std::env::var("SEED").map_or(0, |s| s.parse().unwrap());
    let (source, files) = random_model(&mut Choices::seeded(seed));
    println!("{source}");
    for (name, text) in &files {
        println!("--- {name}\n{text}");
    }
}

/// Runs one seed's model, panicking as it does (`SEED=12 cargo test --release --test random_models -- one --ignored`).
#[test]
#[ignore]
fn one() {
    let seed = std::env::var("SEED").map_or(0, |s| s.parse().unwrap());
    let (source, files) = random_model(&mut Choices::seeded(seed));
    drive(&source, &files, &scratch(&format!("one{seed}")));
}
