#!/usr/bin/env bash
# Runs upward's fuzz targets with cargo-fuzz on the nightly toolchain, each for a time box.
#
#   bash scripts/fuzz.sh                 # every target, 60 s each
#   FUZZ_SECONDS=600 bash scripts/fuzz.sh gguf chat_template
#
# Targets: gguf tokenizer chat_template models_toml knowledge critique (fuzz/fuzz_targets/).
# Each starts from the committed seeds in fuzz/corpus/TARGET and grows a working corpus in
# fuzz/work/TARGET (not committed). A crash, a hang over FUZZ_TIMEOUT seconds or memory
# over FUZZ_RSS_MB stops that target, leaves the input in fuzz/artifacts/TARGET/ and makes
# the script fail. To keep a crash as a regression test, fix it, then copy the input into
# fuzz/corpus/TARGET/ (tests/fuzz_corpus.rs replays that folder on stable in `cargo test`).
# `cargo fuzz cmin TARGET fuzz/corpus/TARGET` shrinks a folder that has grown.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-60}"
timeout="${FUZZ_TIMEOUT:-10}"
rss_mb="${FUZZ_RSS_MB:-2048}"
toolchain="${FUZZ_TOOLCHAIN:-nightly}"
all=(gguf tokenizer chat_template models_toml knowledge critique)
targets=("${@:-${all[@]}}")

if ! cargo "+$toolchain" fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: needs cargo-fuzz on the $toolchain toolchain:" >&2
    echo "  rustup toolchain install $toolchain && cargo install cargo-fuzz" >&2
    exit 2
fi

failed=()
for t in "${targets[@]}"; do
    if [[ ! -d "fuzz/corpus/$t" ]]; then
        echo "fuzz.sh: unknown target $t (one of: ${all[*]})" >&2
        exit 2
    fi
    mkdir -p "fuzz/work/$t"
    echo "== $t: ${seconds}s"
    # The working corpus comes first: libFuzzer adds new inputs to the first folder only.
    if ! cargo "+$toolchain" fuzz run "$t" "fuzz/work/$t" "fuzz/corpus/$t" -- \
        -max_total_time="$seconds" -timeout="$timeout" -rss_limit_mb="$rss_mb" \
        -print_final_stats=1; then
        failed+=("$t")
    fi
done

if ((${#failed[@]})); then
    echo "fuzz.sh: crashes in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz.sh: no crash in ${targets[*]}"
