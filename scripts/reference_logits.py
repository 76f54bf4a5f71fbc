#!/usr/bin/env python3
"""Reference logits from llama.cpp (llama-cpp-python) for the engine tests.

For each test model, tokenizes a fixed chat prompt with llama.cpp, evaluates it, and
writes tests/data/logits/<model>.json with the token ids, the argmax after the prompt,
and the 64 largest logits. The engine test runs the same ids through our forward pass and
compares. Usage: python scripts/reference_logits.py MODEL_DIR
"""
import json
import os
import sys

import numpy as np
from llama_cpp import Llama

MODELS = {
    "smollm2-135m": ("SmolLM2-135M-Instruct.Q4_1.gguf",
                     "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"),
    "gemma3-270m": ("gemma-3-270m-q4_k_m.gguf",
                    "<start_of_turn>user\n如何向领导汇报项目进展？ How should I report progress to my boss?<end_of_turn>\n<start_of_turn>model\n"),
}


def main():
    model_dir = sys.argv[1]
    out_dir = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "logits")
    for name, (file, prompt) in MODELS.items():
        llm = Llama(os.path.join(model_dir, file), n_ctx=512, n_threads=2, logits_all=True, verbose=False,
                    type_k=0, type_v=0)  # f32 KV cache, as upward keeps it
        ids = llm.tokenize(prompt.encode(), add_bos=True, special=True)
        llm.eval(ids)
        logits = np.array(llm.scores[len(ids) - 1], dtype=np.float32)
        top = np.argsort(-logits)[:64]
        # Greedy continuation from llama.cpp (16 tokens), for the cache-reuse test.
        cont = []
        for _ in range(16):
            t = int(np.argmax(np.array(llm.scores[llm.n_tokens - 1])))
            cont.append(t)
            llm.eval([t])
        json.dump({
            "file": file,
            "prompt": prompt,
            "ids": [int(i) for i in ids],
            "argmax": int(top[0]),
            "top_ids": [int(i) for i in top],
            "top_logits": [float(logits[i]) for i in top],
            "greedy": cont,
        }, open(os.path.join(out_dir, f"{name}.json"), "w"), indent=1)
        print(name, len(ids), "tokens; argmax", int(top[0]), repr(llm.detokenize([int(top[0])])), "greedy:", llm.detokenize(cont))


if __name__ == "__main__":
    main()
