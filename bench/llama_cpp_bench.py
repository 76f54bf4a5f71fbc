#!/usr/bin/env python3
"""llama.cpp side of `upward bench --compare llama.cpp`.

Runs the same work as upward's benchmark on the same GGUF file and thread count: load,
prefill of the first N prompt tokens, then the next tokens decoded one at a time, and
prints one JSON object with load_s, prefill_tok_s, decode_tok_s (medians) and
peak_rss_bytes. Needs llama-cpp-python (`pip install llama-cpp-python==0.3.36`).
"""
import argparse
import json
import resource
import statistics
import time

from llama_cpp import Llama


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
    a = ap.parse_args()
    tokens = json.load(open(a.tokens))
    n_ctx = a.prompt_tokens + a.gen_tokens + 16
    kv_type = 0 if a.kv == "f32" else 1  # GGML_TYPE_F32 / GGML_TYPE_F16
    t = time.perf_counter()
    llm = Llama(a.model, n_ctx=n_ctx, n_threads=a.threads, n_threads_batch=a.threads,
                n_batch=512, n_ubatch=512, verbose=False,
                type_k=kv_type, type_v=kv_type)
    load_s = time.perf_counter() - t
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
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({
        "load_s": load_s,
        "prefill_tok_s": statistics.median(prefill),
        "decode_tok_s": statistics.median(decode),
        "peak_rss_bytes": rss,
    }))


if __name__ == "__main__":
    main()
