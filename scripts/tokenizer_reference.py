#!/usr/bin/env python3
"""Write llama.cpp's token ids for tests/data/tokenizer/corpus.txt, the reference that
tests/tokenizer.rs compares our GGUF tokenizer against.

Run with the llama-cpp-python interpreter:
    /work/cache/llama-venv/bin/python scripts/tokenizer_reference.py [MODEL_DIR]
MODEL_DIR defaults to $UPWARD_TEST_MODEL_DIR or /work/cache/models.

Corpus format: one case per line; `\\n`, `\\r`, `\\t` and `\\\\` stand for newline, carriage return, tab and backslash.
Output: tests/data/tokenizer/<model>.json with, per case, the ids without and with
parse_special (no BOS/EOS), and whether llama.cpp's detokenizer gives the text back.

The pre-tokenizers our test models do not use (qwen2, llama-bpe, gpt-2, default) are checked
with SmolLM2's vocabulary under another `tokenizer.ggml.pre`: a copy of the file with that one
metadata value changed, written to a temporary file (smollm2-<pre>.json).
"""
import json
import os
import struct
import sys
import tempfile

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


PRE_VARIANTS = ["qwen2", "llama-bpe", "gpt-2", "default"]

_SCALAR = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}


def with_pre(src_path, pre, dst):
    """Copy a GGUF file to the open file `dst` with tokenizer.ggml.pre set to `pre`."""
    with open(src_path, "rb") as f:
        data = f.read()
    pos = 0

    def take(fmt):
        nonlocal pos
        vals = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return vals

    def skip_value(t):
        nonlocal pos
        if t == 8:
            (n,) = take("Q")
            pos += n
        elif t == 9:
            at, n = take("IQ")
            for _ in range(n):
                skip_value(at)
        else:
            pos += struct.calcsize("<" + _SCALAR[t])

    def enc_str(s):
        b = s.encode("utf-8")
        return struct.pack("<Q", len(b)) + b

    magic, version, n_tensors, n_kv = take("4sIQQ")
    out = bytearray(struct.pack("<4sIQQ", magic, version, n_tensors, n_kv))
    alignment = 32
    for _ in range(n_kv):
        start = pos
        (klen,) = take("Q")
        key = data[pos:pos + klen].decode()
        pos += klen
        (t,) = take("I")
        vstart = pos
        skip_value(t)
        if key == "tokenizer.ggml.pre":
            out += enc_str(key) + struct.pack("<I", 8) + enc_str(pre)
        else:
            out += data[start:pos]
        if key == "general.alignment":
            (alignment,) = struct.unpack_from("<I", data, vstart)
    for _ in range(n_tensors):
        start = pos
        (nlen,) = take("Q")
        pos += nlen
        (ndims,) = take("I")
        pos += 8 * ndims + 4 + 8
        out += data[start:pos]
    data_start = (pos + alignment - 1) // alignment * alignment
    out += b"\0" * ((-len(out)) % alignment)
    dst.write(out)
    dst.write(data[data_start:])
    dst.flush()


def reference(model_path, fname, cases):
    llm = llama_cpp.Llama(model_path=model_path, vocab_only=True, verbose=False)
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
    return out


def write(name, out):
    path = os.path.join(DATA, name + ".json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {path}: {len(out['cases'])} cases")


def main():
    model_dir = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("UPWARD_TEST_MODEL_DIR", "/work/cache/models")
    with open(os.path.join(DATA, "corpus.txt"), encoding="utf-8", newline="") as f:
        cases = [unescape(l.rstrip("\n")) for l in f if l.rstrip("\n")]
    for name, fname in MODELS.items():
        write(name, reference(os.path.join(model_dir, fname), fname, cases))
    smollm = os.path.join(model_dir, MODELS["smollm2"])
    for pre in PRE_VARIANTS:
        with tempfile.NamedTemporaryFile(suffix=".gguf") as tmp:
            with_pre(smollm, pre, tmp)
            out = reference(tmp.name, MODELS["smollm2"], cases)
        out["pre"] = pre
        write("smollm2-" + pre, out)

if __name__ == "__main__":
    main()
