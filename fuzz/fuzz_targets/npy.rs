//! The npy reader on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| vi::fuzzing::data_reader(vi::fuzzing::Reader::Npy, bytes));
