#!/usr/bin/env python3
"""llama.cpp side of `upward bench --compare llama.cpp`.

Runs the same work as upward's benchmark on the same GGUF file and thread count: load,
prefill of the first N prompt tokens, then the next tokens decoded one at a time, and
prints one JSON object with load_s, prefill_tok_s, decode_tok_s (medians),
peak_rss_bytes, system_info (the SIMD paths this llama.cpp was built with) and
evaluated_ids. The token ids come from upward (--tokens) and are fed to llama.cpp as they
are, never re-tokenized; evaluated_ids is what llama.cpp recorded as evaluated in the last
run, so that upward can check both engines ran the same tokens.

On CPUs with AMX, llama-cpp-python builds that include ggml's AMX kernels crash on any batch
of more than one token. With --extra-bufts auto (the default) a child process first tries
a two-token batch; if it dies, the model is loaded without ggml's extra buffer types (no
AMX, no weight repacking), and the JSON says so ("extra_bufts": false).
Needs llama-cpp-python (`pip install llama-cpp-python==0.3.36`).
"""
import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import llama_cpp
from llama_cpp import Llama


def peak_rss_bytes():
    """This process's peak RSS: VmHWM, which belongs to its own address space. (ru_maxrss
    would not do: Linux carries it over exec, so it reports upward's peak when upward
    spawned us.)"""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def load(model, n_ctx, threads, kv_type, extra_bufts):
    """The model, with ggml's extra buffer types (AMX, repacked weights) on or off."""
    if not extra_bufts:
        # Llama() takes its defaults from the low-level module.
        low = llama_cpp.llama_cpp
        default = low.llama_model_default_params

        def without():
            p = default()
            p.use_extra_bufts = False
            return p

        low.llama_model_default_params = without
    return Llama(model, n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                 n_batch=512, n_ubatch=512, verbose=False,
                 type_k=kv_type, type_v=kv_type)


def batches_work(model, threads, tokens):
    """Whether a two-token batch runs with the extra buffer types (in a child process,
    since the AMX crash takes the process down)."""
    code = ("import sys; from llama_cpp import Llama; "
            "Llama(sys.argv[1], n_ctx=64, n_threads=int(sys.argv[2]), verbose=False)"
            ".eval([int(t) for t in sys.argv[3:5]])")
    r = subprocess.run([sys.executable, "-c", code, model, str(threads)] +
                       [str(t) for t in tokens[:2]], capture_output=True)
    return r.returncode == 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--prompt-tokens", type=int, default=512)
    ap.add_argument("--gen-tokens", type=int, default=128)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--tokens", required=True, help="JSON file with the token ids")
    ap.add_argument("--kv", choices=["f32", "f16"], default="f16",
                    help="KV-cache type (default f16, llama.cpp's own default and its fast path)")
    ap.add_argument("--extra-bufts", choices=["auto", "on", "off"], default="auto",
                    help="ggml's extra buffer types (AMX, weight repacking); auto: on unless "
                         "a two-token batch crashes with them")
    a = ap.parse_args()
    tokens = json.load(open(a.tokens))
    need = a.prompt_tokens + a.gen_tokens
    if len(tokens) < need or not all(isinstance(t, int) and t >= 0 for t in tokens):
        sys.exit(f"{a.tokens}: need {need} token ids, got {len(tokens)}")
    n_ctx = a.prompt_tokens + a.gen_tokens + 16
    kv_type = 0 if a.kv == "f32" else 1  # GGML_TYPE_F32 / GGML_TYPE_F16
    extra = a.extra_bufts == "on" or (
        a.extra_bufts == "auto" and batches_work(a.model, a.threads, tokens))
    t = time.perf_counter()
    llm = load(a.model, n_ctx, a.threads, kv_type, extra)
    load_s = time.perf_counter() - t
    if max(tokens[:need]) >= llm.n_vocab():
        sys.exit(f"token id {max(tokens[:need])} is outside the model's {llm.n_vocab()} tokens")
    prefill, decode = [], []
    for _ in range(max(1, a.runs)):
        llm.reset()
        llm._ctx.kv_cache_clear() if hasattr(llm._ctx, "kv_cache_clear") else None
        t = time.perf_counter()
        llm.eval(tokens[: a.prompt_tokens])
        prefill.append(a.prompt_tokens / (time.perf_counter() - t))
        t = time.perf_counter()
        for i in range(a.gen_tokens):
            llm.eval([tokens[a.prompt_tokens + i]])
        decode.append(a.gen_tokens / (time.perf_counter() - t))
        if llm.n_tokens != need:
            sys.exit(f"llama.cpp evaluated {llm.n_tokens} tokens, expected {need}")
    evaluated = [int(t) for t in llm.input_ids[: llm.n_tokens]]
    rss = peak_rss_bytes()
    print(json.dumps({
        "load_s": load_s,
        "prefill_tok_s": statistics.median(prefill),
        "decode_tok_s": statistics.median(decode),
        "peak_rss_bytes": rss,
        "system_info": llama_cpp.llama_print_system_info().decode(errors="replace").strip(),
        "extra_bufts": extra,
        "evaluated_ids": evaluated,
    }))


if __name__ == "__main__":
    main()
