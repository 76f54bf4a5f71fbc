"""Starts llama-cpp-python's OpenAI-compatible server (`python -m llama_cpp.server` with
the same arguments), with weight repacking ("extra buffer types") off: on virtual machines
that advertise AMX without enabling it, ggml's AMX kernels fault, and repacking only
changes speed. Used by `upward bench --concurrent N --compare llama.cpp` and by
tests/remote_llama_server.rs."""
import runpy
import sys

import llama_cpp.llama_cpp as C

_default = C.llama_model_default_params


def _params():
    p = _default()
    p.use_extra_bufts = False
    return p


C.llama_model_default_params = _params
sys.argv[0] = "llama_cpp.server"
runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
