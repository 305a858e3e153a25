//! Random well-formed models (the generator of tests/common/random_model.rs, its choices read
//! from the fuzzer's bytes) through `check`, `graph` and a 10-step `fit`. Diagnostics are fine;
//! a panic is a crash. Saved crashes are replayed by tests/random_models.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/common/random_model.rs"]
mod random_model;

use random_model::{drive, random_model, Choices};

fuzz_target!(|bytes: &[u8]| {
    let (source, files) = random_model(&mut Choices::bytes(bytes));
    let dir = std::env::temp_dir().join(format!("vi-fuzz-models-{}", std::process::id()));
    drive(&source, &files, &dir);
});
