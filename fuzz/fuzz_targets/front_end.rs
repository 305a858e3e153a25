//! The front end (lex, parse, check, lower, analyse) on arbitrary text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| vi::fuzzing::front_end(bytes));
