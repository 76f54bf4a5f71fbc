//! A model file's chat template is code from a download: `upward chat` on a model whose
//! template loops for ever or writes a gigabyte must stop with a clear error, not hang or
//! take all memory.

mod hostile_support;

use candle_core::quantized::gguf_file::Value;
use hostile_support::{chat, Gguf};

fn refused_with(template: &str, needle: &str) {
    let mut g = Gguf::tiny_llama();
    g.set("tokenizer.chat_template", Value::String(template.into()));
    let home = tempfile::tempdir().unwrap();
    let path = g.write(home.path(), "template.gguf");
    let (ok, code, stdout, stderr) = chat(home.path(), &path);
    assert!(!ok, "answered {stdout:?}");
    assert_ne!(code, Some(101), "panicked:\n{stderr}");
    assert!(stderr.contains("chat template") && stderr.contains(needle), "{stderr}");
}

/// Issue 15.2: three nested `range(10000)` loops hung the load.
#[test]
fn a_template_that_loops_for_ever_is_stopped() {
    let t = "{% for a in range(10000) %}{% for b in range(10000) %}{% for c in range(10000) %}{% endfor %}{% endfor %}{% endfor %}";
    refused_with(t, "instructions");
}

/// Issue 15.2: a template that emits about 1 GB took 24 GB of memory.
#[test]
fn a_template_that_writes_a_gigabyte_is_stopped() {
    let t = "{% for i in range(100000) %}{{ 'x' * 10000 }}{% endfor %}";
    refused_with(t, "bytes");
}
