#!/usr/bin/env python3
"""Where upward's decode time goes, from a `perf` profile of `upward bench`.

Runs `perf record` on `upward bench` with a one-token prompt (which takes the decode path,
not the prefill panels) and many decoded tokens, then sorts the samples of the upward process into:
  - the weight kernels, one line per storage type (q4_1, q8_0, q4_k, ...): the instances of
    `kernels::matvec_rows::go` (and of the iterator closures the K-quants' one-row tiles are
    inlined into), told apart by the block size their loops step by;
  - attention (`engine::attention`), the KV cache, the activations and norms;
  - the decode team's spinning and waiting (`engine::team`, sched_yield, the kernel's
    scheduler), the bandwidth measurement and model load (left out of the shares), and the rest.

Usage: python3 scripts/profile-decode.py MODEL.gguf [--threads 2] [--gen-tokens 256]
         [--upward target/release/upward] [--keep perf.data]
Needs: perf (Debian: apt-get install linux-perf), objdump (binutils).
"""
import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile

# Bytes per block of each storage type: the step of the kernel's loop over a row.
BLOCK_BYTES = {"q4_0": 18, "q4_1": 20, "q5_0": 22, "q5_1": 24, "q8_0": 34,
               "q4_k": 144, "q5_k": 176, "q6_k": 210}


def kernel_dtype(binary, start, size):
    """The storage type whose block size the kernel instance at `start` steps by."""
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn",
                          f"--start-address={start:#x}", f"--stop-address={start + size:#x}",
                          binary], capture_output=True, text=True).stdout
    steps = {int(m, 16) for m in re.findall(r"\badd\s+\$0x([0-9a-f]+),%r", out)}
    found = [name for name, b in BLOCK_BYTES.items() if b in steps]
    return "/".join(found) or None


def symbols(binary):
    """(start, size) of each instance of a kernel symbol, from the symbol table."""
    out = subprocess.run(["nm", "-S", binary], capture_output=True, text=True).stdout
    found = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and ("matvec_rows2go" in parts[3] or KERNEL_CLOSURE in parts[3]):
            found.append((int(parts[0], 16), int(parts[1], 16)))
    return found


# The mangled name of the closures the K-quant kernels' rows are inlined into.
KERNEL_CLOSURE = "try_trait..Wrapped"


def category(sym):
    if "matvec_rows" in sym or "kernels::" in sym and "quantize" not in sym:
        return "weights"
    if "attention" in sym:
        return "attention"
    if "engine::team" in sym or "sched_yield" in sym or sym.startswith(
            ("__schedule", "schedule", "finish_task_switch", "do_sched_yield", "pick_next",
             "yield_", "__sched", "futex", "clock_gettime", "__vdso_clock_gettime",
             "<std::time::Instant>", "<std::sys::pal::unix::time")):
        return "team: spinning and waiting"
    if "bandwidth::" in sym:
        return None  # the bench's own bandwidth measurement
    if "cache::" in sym:
        return "KV cache writes"
    if "activat" in sym or "rms_norm" in sym or "rope" in sym or "quantize" in sym:
        return "activations, norms, rope, quantizing x"
    return "rest"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--gen-tokens", type=int, default=256)
    ap.add_argument("--upward", default=os.path.join(os.path.dirname(__file__), "..",
                                                     "target", "release", "upward"))
    ap.add_argument("--keep", help="keep perf's data in this file")
    a = ap.parse_args()
    binary = os.path.abspath(a.upward)
    data = a.keep or tempfile.mktemp(suffix=".perf.data")
    cmd = ["perf", "record", "-F", "1999", "-e", "cycles", "-o", data, "--", binary,
           "--model", a.model, "--threads", str(a.threads), "bench", "--prompt-tokens", "1",
           "--gen-tokens", str(a.gen_tokens), "--runs", "1", "--bandwidth-mib", "64"]
    bench = subprocess.run(cmd, capture_output=True, text=True)
    if bench.returncode != 0:
        sys.exit(bench.stderr)
    print(bench.stdout.strip())
    script = subprocess.run(["perf", "script", "-i", data, "-F", "comm,ip,sym,symoff"],
                            capture_output=True, text=True).stdout
    instances = symbols(binary)
    dtype_of = {}
    counts = collections.Counter()
    rest = collections.Counter()
    base = None
    for line in script.splitlines():
        m = re.match(r"\s*(\S+)\s+([0-9a-f]+)\s+(.*?)\+0x([0-9a-f]+)\s*$", line)
        if not m:
            counts["rest"] += 1
            continue
        ip, sym, off = int(m.group(2), 16), m.group(3), int(m.group(4), 16)
        cat = category(sym)
        if cat is None:
            continue
        if "matvec_rows::go" in sym or "try_trait::Wrapped" in sym:
            start = ip - off
            if base is None:  # the binary is position-independent: find its load address
                fits = [s for s, _ in instances if (start - s) % 0x1000 == 0]
                if len(fits) == 1:
                    base = start - fits[0]
            file_start = start - (base or 0)
            if file_start not in dtype_of:
                size = dict(instances).get(file_start, 0x800)
                dtype_of[file_start] = kernel_dtype(binary, file_start, size)
            dtype = dtype_of[file_start]
            if dtype:
                cat = f"weights: {dtype}"
            elif "matvec_rows::go" in sym:
                cat = "weights: unknown type"
        counts[cat] += 1
        if cat == "rest":
            rest[sym] += 1
    total = sum(counts.values()) or 1
    print(f"\nperf samples of decode (load {os.getloadavg()[0]:.1f}): {total}")
    for cat, n in counts.most_common():
        print(f"{cat:<42} {100 * n / total:5.1f} %")
    print("largest in the rest:")
    for sym, n in rest.most_common(8):
        print(f"  {100 * n / total:5.1f} %  {sym[:100]}")
    if not a.keep:
        os.unlink(data)


if __name__ == "__main__":
    main()
