//! Replays what the coverage-guided fuzzers (`fuzz/`, run by `fuzz/run.sh`) kept: a minimal
//! corpus with their coverage, and every input that once crashed vi. Each must go through the
//! front end or its reader without a panic.

use std::path::Path;

use vi::fuzzing::{self, Reader};

fn replay(target: &str, run: impl Fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz_corpus")
        .join(target);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut count = 0;
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        let bytes = std::fs::read(&path).expect("a corpus file");
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&bytes)));
        assert!(outcome.is_ok(), "{} panics", path.display());
        count += 1;
    }
    assert!(count > 0, "{} is empty", dir.display());
}

#[test]
fn front_end_corpus() {
    replay("front_end", fuzzing::front_end);
}

#[test]
fn data_reader_corpora() {
    for reader in Reader::ALL {
        replay(reader.name(), |b| fuzzing::data_reader(reader, b));
    }
}
