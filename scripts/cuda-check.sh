#!/usr/bin/env bash
# Compile check of the `cuda` feature on a machine with no GPU and no CUDA toolkit.
#
# NVIDIA's CUDA 13 compiler, headers and libraries come from PyPI into a cached venv; with
# them, `cargo build --release --features cuda` compiles candle's CUDA kernels (nvcc) and
# our code, then links the `upward` binary against stub libraries.
#
# usage: scripts/cuda-check.sh [--link | --lib | --env]
#   --link  (default) build the library, then link the binary against the stubs
#   --lib   build the library only (no stubs, no link)
#   --env   install the toolkit if needed and print its `export` lines (for eval), no build
#
# Environment:
#   UPWARD_CUDA_CACHE       where the venv lives (default ~/.cache/upward)
#   UPWARD_CUDA_TARGET_DIR  cargo target dir (default $UPWARD_CUDA_CACHE/target-cuda; kept
#                           apart from the CPU build's, whose features differ)
#   CUDA_COMPUTE_CAP        GPU architecture the kernels are built for (default 90)
#
# THE LINK STUBS ARE FOR THIS CHECK ONLY. libcuda.so comes with the GPU driver, not the
# toolkit; here a stub that defines the driver functions the binary calls (each returns
# CUDA_ERROR_STUB_LIBRARY) lets the linker finish. The stub directory is passed to the
# linker through LIBRARY_PATH for this one command: never put it on LD_LIBRARY_PATH, in
# ld.so.conf or in an rpath. On a GPU machine, build with the real toolkit and driver
# (README, "GPU").
set -euo pipefail
cd "$(dirname "$0")/.."

mode=link
for arg in "$@"; do
    case "$arg" in
        --link) mode=link ;;
        --lib) mode=lib ;;
        --env) mode=env ;;
        -h | --help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "cuda-check: unknown argument $arg (use --link, --lib or --env)" >&2; exit 2 ;;
    esac
done

say() { echo "cuda-check: $*" >&2; }
die() { say "FAILED: $*"; exit 1; }
for tool in cargo python3 cc nm readelf; do
    command -v "$tool" >/dev/null || die "$tool is required"
done

cache="${UPWARD_CUDA_CACHE:-$HOME/.cache/upward}"
venv="$cache/cuda-venv"
export CARGO_TARGET_DIR="${UPWARD_CUDA_TARGET_DIR:-$cache/target-cuda}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

# CUDA 13.5 from PyPI, pinned: a new release changes nothing here until this list does.
packages=(
    nvidia-cuda-nvcc==13.5.37
    nvidia-cuda-crt==13.5.37
    nvidia-cuda-runtime==13.5.37
    nvidia-cuda-cccl==13.3.5.0.6
    nvidia-cublas==13.10.0.20
    nvidia-curand==10.4.5.25
)
stamp="$venv/upward-cuda-packages"
if [[ ! -x "$venv/bin/python" || "$(cat "$stamp" 2>/dev/null)" != "${packages[*]}" ]]; then
    say "installing the CUDA toolkit from PyPI into $venv (about 1.2 GB)"
    rm -rf "$venv"
    mkdir -p "$cache"
    python3 -m venv "$venv" ||
        die "python3 -m venv failed (on Debian/Ubuntu: apt-get install python3-venv)"
    "$venv/bin/python" -m pip install --disable-pip-version-check -q "${packages[@]}" >&2 ||
        die "pip could not install ${packages[*]}"
    echo "${packages[*]}" >"$stamp"
fi
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
cuda="$site/nvidia/cu13"
[[ -x "$cuda/bin/nvcc" ]] || die "no nvcc at $cuda/bin/nvcc (delete $venv and rerun)"

# Only this toolkit: another one named by the usual variables would be mixed in.
unset CUDA_HOME CUDA_PATH CUDA_TOOLKIT_ROOT_DIR NVCC
export PATH="$cuda/bin:$PATH"
export CUDA_ROOT="$cuda"
# cudarc 0.19 knows CUDA up to 13.4; 13.5's driver API is a superset of it.
export CUDARC_CUDA_VERSION=13040
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
if [[ "$mode" == env ]]; then
    echo "unset CUDA_HOME CUDA_PATH CUDA_TOOLKIT_ROOT_DIR NVCC"
    for var in PATH CUDA_ROOT CUDARC_CUDA_VERSION CUDA_COMPUTE_CAP; do
        printf 'export %s=%q\n' "$var" "${!var}"
    done
    exit 0
fi
say "$("$cuda/bin/nvcc" --version | tail -1), sm_$CUDA_COMPUTE_CAP, target dir $CARGO_TARGET_DIR"

start=$SECONDS
say "cargo build --release --lib --features cuda"
cargo build --locked --release --lib --features cuda || die "the library does not compile with --features cuda"
say "library: ok ($((SECONDS - start)) s)"
[[ "$mode" == lib ]] && exit 0

# Link stubs: the unversioned names the linker looks for (libcublas.so -> the venv's
# libcublas.so.13), and a stub libcuda.so with every driver function cudarc calls.
stubs="$CARGO_TARGET_DIR/cuda-link-stubs"
rm -rf "$stubs"
mkdir -p "$stubs"
for lib in "$cuda"/lib/lib*.so.*; do
    name=$(basename "$lib")
    ln -s "$lib" "$stubs/${name%%.so.*}.so"
done
# The driver API: the undefined `cu[A-Z]*` symbols (cuInit, cuMemAlloc_v2, ...) of the
# build's Rust libraries and candle's kernel archives, less any a toolkit library defines.
shopt -s nullglob
objects=("$CARGO_TARGET_DIR"/release/deps/lib*.rlib "$CARGO_TARGET_DIR"/release/build/*/out/*.a)
shopt -u nullglob
((${#objects[@]})) || die "no build output in $CARGO_TARGET_DIR/release"
nm --undefined-only "${objects[@]}" 2>/dev/null | awk '$1 == "U" && $2 ~ /^cu[A-Z][A-Za-z0-9_]*$/ { print $2 }' |
    sort -u >"$stubs/needed.txt"
nm -D --defined-only "$cuda"/lib/lib*.so.* 2>/dev/null | awk 'NF == 3 { sub(/@.*/, "", $3); print $3 }' |
    sort -u >"$stubs/toolkit.txt"
comm -23 "$stubs/needed.txt" "$stubs/toolkit.txt" >"$stubs/driver.txt"
count=$(wc -l <"$stubs/driver.txt")
((count > 0)) || die "found no driver symbols in $CARGO_TARGET_DIR/release"
{
    echo "/* Generated by scripts/cuda-check.sh for a link check only: never load it. */"
    echo "/* Each driver function returns CUDA_ERROR_STUB_LIBRARY (34). */"
    while read -r sym; do echo "int $sym(void) { return 34; }"; done <"$stubs/driver.txt"
} >"$stubs/libcuda-stub.c"
cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$stubs/libcuda.so" "$stubs/libcuda-stub.c" ||
    die "could not build the libcuda stub"
say "stubs in $stubs: libcuda.so with $count driver functions, $(find "$stubs" -name '*.so' -type l | wc -l) symlinks"

start=$SECONDS
say "cargo build --release --features cuda (linking against the stubs)"
LIBRARY_PATH="$stubs${LIBRARY_PATH:+:$LIBRARY_PATH}" cargo build --locked --release --features cuda ||
    die "the upward binary does not link with --features cuda"
bin="$CARGO_TARGET_DIR/release/upward"
needed=$(readelf -d "$bin" | awk '/NEEDED/ { gsub(/[][]/, "", $NF); print $NF }' | tr '\n' ' ')
[[ " $needed" == *" libcuda.so.1 "* ]] || die "$bin does not need libcuda.so.1 (needs: $needed)"
say "link: ok ($((SECONDS - start)) s); $bin needs $needed"
say "that binary is linked against stubs: it runs on a GPU machine only with the real driver"
