//! Thousands of random and mutated inputs through the front end (lex, parse, check, lower,
//! print) and the data readers: whatever comes in, the answer is a model or diagnostics, never a
//! panic.

use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use vi::LoadOptions;

/// Pieces of the language, so random sequences reach deep into the parser and checker.
const PIECES: &[&str] = &[
    "data ",
    "const ",
    "param ",
    "net ",
    "let ",
    "for ",
    " in ",
    " batch ",
    "guide ",
    "fit ",
    "term ",
    "objective ",
    "maximise ",
    "draw ",
    "from ",
    "x",
    "y",
    "z",
    "mu",
    "c",
    "i",
    "n",
    "N",
    "K",
    "D",
    "w",
    "h",
    "~",
    "=",
    "+",
    "-",
    "*",
    "/",
    "^",
    "@",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    "..",
    "->",
    ";",
    "\n",
    " ",
    "0",
    "1",
    "2",
    "3.5",
    "-1",
    "1e9",
    "\"data/gmm.csv\"",
    "real",
    "unit",
    "positive",
    "binary",
    "simplex",
    "count",
    "Normal",
    "Gamma",
    "Beta",
    "Categorical",
    "Dirichlet",
    "Bernoulli",
    "Poisson",
    "MvNormal",
    "Uniform",
    "HalfCauchy",
    "fill",
    "exp",
    "log",
    "sum",
    "dot",
    "softmax",
    "zeros",
    "anneal",
    "mlp",
    "tanh",
    "sigmoid",
    "layer",
    "precision",
    "logits",
    "elbo",
    "kl",
    "#",
    "encoder",
    "decoder",
    "[K]",
    "[N, D]",
    "1..N",
    "[i]",
    "[c[i]]",
    "[:2]",
    "[1:]",
    "steps",
    "method",
];

fn model_texts() -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("models")).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "vi") {
            out.push(std::fs::read_to_string(p).unwrap());
        }
    }
    out.sort();
    out
}

fn front_end(text: &str, use_defaults: bool) {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let opts = LoadOptions {
        use_defaults,
        ..LoadOptions::default()
    };
    match vi::load_str("fuzz", "fuzz.vi", text, &base, &opts) {
        Ok(loaded) => {
            let _ = vi::report::model_summary(&loaded.model, &loaded.data);
            let _ = vi::graph::to_text(&loaded.model);
            let _ = vi::graph::to_dot(&loaded.model);
        }
        Err(diags) => {
            assert!(!diags.is_empty());
            let _ = diags.render_plain();
        }
    }
}

/// Apply one random edit to a text: delete, insert a piece, duplicate or drop a line.
fn mutate(text: &str, choice: u8, at: usize, piece: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    let at = if chars.is_empty() { 0 } else { at % chars.len() };
    match choice % 5 {
        0 => {
            let end = (at + 1 + piece % 7).min(chars.len());
            chars[..at].iter().chain(&chars[end..]).collect()
        }
        1 => {
            let mut s: String = chars[..at].iter().collect();
            s.push_str(PIECES[piece % PIECES.len()]);
            s.extend(&chars[at..]);
            s
        }
        2 => {
            let lines: Vec<&str> = text.lines().collect();
            if lines.is_empty() {
                return text.to_string();
            }
            let k = at % lines.len();
            let mut out = lines.clone();
            out.insert(k, lines[piece % lines.len()]);
            out.join("\n")
        }
        3 => {
            let lines: Vec<&str> = text.lines().collect();
            if lines.is_empty() {
                return text.to_string();
            }
            let k = at % lines.len();
            lines
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != k)
                .map(|(_, l)| *l)
                .collect::<Vec<_>>()
                .join("\n")
        }
        _ => {
            // Replace a number-like or name-like character.
            let mut c = chars.clone();
            if let Some(ch) = c.get_mut(at) {
                *ch = ['0', '-', 'x', ']', '[', '~', '\n', '.', '9', '"'][piece % 10];
            }
            c.into_iter().collect()
        }
    }
}

/// A deterministic runner, so CI sees the same inputs every time; set `VI_FUZZ_RANDOM=1` to
/// explore new ones.
fn runner(cases: u32) -> TestRunner {
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    if std::env::var_os("VI_FUZZ_RANDOM").is_some() {
        TestRunner::new(config)
    } else {
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha))
    }
}

#[test]
fn random_piece_sequences_never_panic() {
    runner(3000)
        .run(&prop::collection::vec(0..PIECES.len(), 0..48), |idx| {
            let text: String = idx.iter().map(|&k| PIECES[k]).collect();
            front_end(&text, false);
            Ok(())
        })
        .unwrap();
}

#[test]
fn mutated_models_never_panic() {
    let models = model_texts();
    let edits = prop::collection::vec((any::<u8>(), any::<usize>(), any::<usize>()), 1..6);
    runner(3000)
        .run(
            &(0..models.len(), edits, any::<bool>()),
            |(m, edits, defaults)| {
                let mut text = models[m].clone();
                for (choice, at, piece) in edits {
                    text = mutate(&text, choice, at, piece);
                }
                front_end(&text, defaults && m % 3 == 0);
                Ok(())
            },
        )
        .unwrap();
}

#[test]
fn random_bytes_never_panic() {
    runner(2000)
        .run(&prop::collection::vec(any::<u8>(), 0..200), |bytes| {
            front_end(&String::from_utf8_lossy(&bytes), false);
            Ok(())
        })
        .unwrap();
}

#[test]
fn data_readers_never_panic() {
    let seeds: Vec<Vec<u8>> = vec![
        b"x,y\n1,2\n3,4\n".to_vec(),
        b"x0,x1,y\n1.5,2,0\n3,4e-3,1\n".to_vec(),
        vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2, 1, 2, 3, 4],
        b"\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }".to_vec(),
    ];
    runner(3000)
        .run(
            &(
                0..seeds.len(),
                prop::collection::vec((any::<usize>(), any::<u8>()), 0..8),
            ),
            |(k, flips)| {
                let mut bytes = seeds[k].clone();
                for (at, b) in flips {
                    if bytes.is_empty() {
                        bytes.push(b);
                    } else if b % 3 == 0 {
                        bytes.truncate(at % bytes.len());
                    } else {
                        let n = bytes.len();
                        bytes[at % n] = b;
                    }
                }
                let _ = vi::data::csv::parse(&bytes, "f.csv");
                let _ = vi::data::csv::parse_whitespace_matrix(&bytes, "f.amat");
                let _ = vi::data::idx::parse(&bytes, "f.idx");
                let _ = vi::data::npy::parse(&bytes, "f.npy");
                Ok(())
            },
        )
        .unwrap();
}
