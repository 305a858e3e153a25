#!/usr/bin/env bash
# Fuzz each target for SECONDS (default 600), then fold what was found into the saved corpus
# that `cargo test` replays (tests/fuzz_corpus/). Needs cargo-fuzz; dfdx 0.13 does not build on
# recent nightlies, so the stable compiler runs with nightly flags allowed.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-600}
shift || true
targets=${*:-front_end csv npy idx mat models}
export RUSTC_BOOTSTRAP=1
# -a: debug assertions, so that integer overflow is a crash; -s none: safe Rust needs no ASan.
cargo +stable fuzz build -O -a -s none
for t in $targets; do
    mkdir -p corpus/$t ../tests/fuzz_corpus/$t
    dict=()
    [[ -f $t.dict ]] && dict=(-dict=$t.dict)
    # Seeds: the example models and error files, their data, and made-up binary files.
    case $t in
        front_end) seeds=(../models ../tests/errors) ;;
        csv) seeds=(../models/data ../tests/errors/data) ;;
        *) seeds=(seeds/$t) ;; # models: bytes that drive tests/common/random_model.rs
    esac
    cargo +stable fuzz run -O -a -s none "$t" corpus/$t "${seeds[@]}" -- \
        -max_total_time="$seconds" -max_len=8192 -timeout=10 -rss_limit_mb=4096 "${dict[@]}" \
        -print_final_stats=1 -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 2>&1 | tee "logs-$t.txt" | grep -E "^#[0-9]+ +(DONE|INITED)|stat::|SUMMARY|panicked" || true
    # For the regression test: every input that ever crashed (crash-*, timeout-*, oom-*) stays;
    # the rest is replaced by a minimal corpus with the same coverage. (After a run with crashes
    # cargo-fuzz re-runs each one to show it; with many, stop it and read them with
    # `target/x86_64-unknown-linux-gnu/release/$t artifacts/$t/FILE`.)
    cargo +stable fuzz cmin -O -a -s none "$t" corpus/$t -- -max_len=8192 >/dev/null 2>&1 || true
    find ../tests/fuzz_corpus/$t -type f ! -name 'crash-*' ! -name 'timeout-*' ! -name 'oom-*' -delete
    # Each generated model is fitted, so `models` keeps only its crashes for the test to replay
    # (tests/random_models.rs); its coverage corpus stays in corpus/models for the next run.
    [[ $t == models ]] || cp corpus/$t/* ../tests/fuzz_corpus/$t/ 2>/dev/null || true
    cp artifacts/$t/* ../tests/fuzz_corpus/$t/ 2>/dev/null || true
done
