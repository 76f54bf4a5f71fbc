#!/usr/bin/env python3
"""Write llama.cpp's token ids for tests/data/tokenizer/corpus.txt, the reference that
tests/tokenizer.rs compares our GGUF tokenizer against.

Run with the llama-cpp-python interpreter:
    /work/cache/llama-venv/bin/python scripts/tokenizer_reference.py [MODEL_DIR]
MODEL_DIR defaults to $UPWARD_TEST_MODEL_DIR or /work/cache/models.

Corpus format: one case per line; `\\n`, `\\r`, `\\t` and `\\\\` stand for newline, carriage return, tab and backslash.
Output: tests/data/tokenizer/<model>.json with, per case, the ids without and with
parse_special (no BOS/EOS), and whether llama.cpp's detokenizer gives the text back.
"""
import json
import os
import sys

import llama_cpp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data", "tokenizer")
MODELS = {
    "smollm2": "SmolLM2-135M-Instruct.Q4_1.gguf",
    "gemma3": "gemma-3-270m-q4_k_m.gguf",
}


def unescape(line):
    out, i = [], 0
    while i < len(line):
        c = line[i]
        if c == "\\" and i + 1 < len(line) and line[i + 1] in "nrt\\":
            out.append({"n": "\n", "r": "\r", "t": "\t", "\\": "\\"}[line[i + 1]])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def main():
    model_dir = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("UPWARD_TEST_MODEL_DIR", "/work/cache/models")
    with open(os.path.join(DATA, "corpus.txt"), encoding="utf-8", newline="") as f:
        cases = [unescape(l.rstrip("\n")) for l in f if l.rstrip("\n")]
    for name, fname in MODELS.items():
        llm = llama_cpp.Llama(model_path=os.path.join(model_dir, fname), vocab_only=True, verbose=False)
        out = {"model": fname, "llama_cpp_python": llama_cpp.__version__, "cases": []}
        for text in cases:
            b = text.encode("utf-8")
            plain = llm.tokenize(b, add_bos=False, special=False)
            special = llm.tokenize(b, add_bos=False, special=True)
            out["cases"].append({
                "text": text,
                "plain": plain,
                "special": special,
                "roundtrip_plain": llm.detokenize(plain, special=True) == b,
                "roundtrip_special": llm.detokenize(special, special=True) == b,
            })
        first = cases[0].encode("utf-8")
        out["add_special"] = {"text": cases[0], "ids": llm.tokenize(first, add_bos=True, special=True)}
        path = os.path.join(DATA, name + ".json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(out, f, ensure_ascii=False, indent=1)
            f.write("\n")
        print(f"wrote {path}: {len(cases)} cases")


if __name__ == "__main__":
    main()
