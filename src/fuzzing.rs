//! Entry points for the coverage-guided fuzzers in `fuzz/` and for the test that replays their
//! saved corpus (`tests/fuzz_corpus.rs`): each takes arbitrary bytes and must return, whatever
//! they hold, without panicking.

use std::path::Path;

use crate::data;

/// The whole front end on a model text: lex, parse, check, lower, print, conjugacy analysis.
/// Default data files are not read: a fuzzer must not wander the file system.
pub fn front_end(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let opts = crate::LoadOptions {
        bindings: Vec::new(),
        use_defaults: false,
        require_data: false,
    };
    match crate::load_str("fuzz", "fuzz.vi", text, Path::new("."), &opts) {
        Ok(loaded) => {
            let _ = crate::report::model_summary(&loaded.model, &loaded.data);
            let _ = crate::graph::to_text(&loaded.model);
            let _ = crate::graph::to_dot(&loaded.model);
            let _ = crate::infer::plan::analyse(&loaded.model);
            let _ = crate::infer::FitOptions::from_settings(&loaded.model.settings, &loaded.model);
        }
        Err(diags) => {
            let _ = diags.render(false);
        }
    }
}

/// The data readers.
#[derive(Clone, Copy, Debug)]
pub enum Reader {
    /// CSV tables and whitespace matrices (`.amat`), with column selection.
    Csv,
    Npy,
    Idx,
    /// MATLAB v5 (Frey faces).
    Mat,
}

impl Reader {
    pub const ALL: [Reader; 4] = [Reader::Csv, Reader::Npy, Reader::Idx, Reader::Mat];

    /// The corpus folder's name.
    pub fn name(self) -> &'static str {
        match self {
            Reader::Csv => "csv",
            Reader::Npy => "npy",
            Reader::Idx => "idx",
            Reader::Mat => "mat",
        }
    }
}

/// One reader on arbitrary bytes, then what binding does with its result.
pub fn data_reader(reader: Reader, bytes: &[u8]) {
    match reader {
        Reader::Csv => {
            if let Ok(table) = data::csv::parse(bytes, "fuzz.csv") {
                let _ = table.whole();
                let _ = table.column_named("x");
                let _ = table.numbered_columns("x");
                let _ = table.columns_named(&["0".into(), "x".into(), "1..3".into()]);
            }
            let _ = data::csv::parse_whitespace_matrix(bytes, "fuzz.amat");
        }
        Reader::Npy => {
            let _ = data::npy::parse(bytes, "fuzz.npy");
        }
        Reader::Idx => {
            let _ = data::idx::looks_like_idx(bytes);
            let _ = data::idx::parse(bytes, "fuzz.idx");
        }
        Reader::Mat => {
            let _ = data::mat::looks_like_mat(bytes);
            let _ = data::mat::parse(bytes, "fuzz.mat");
        }
    }
}
