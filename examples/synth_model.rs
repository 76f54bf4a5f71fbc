//! Writes a random-weight GGUF model for speed measurements (speed does not depend on the
//! weights' values): a 1B-class llama (Llama-3.2-1B shapes, Q4_K matrices, Q6_K
//! embeddings) with the vocabulary of a real model, so llama.cpp and upward both load it.
//!
//! `cargo run --release --example synth_model -- OUT.gguf VOCAB_MODEL.gguf`

use upward::gguf::synth::{write_random_model_with_vocab, SynthSpec};
use upward::gguf::GgufFile;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(out), Some(vocab)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: synth_model OUT.gguf VOCAB_MODEL.gguf");
    };
    let vocab = GgufFile::open(std::path::Path::new(&vocab))?;
    let t = std::time::Instant::now();
    write_random_model_with_vocab(std::path::Path::new(&out), &SynthSpec::llama_1b(), 1, &vocab)?;
    let size = std::fs::metadata(&out)?.len();
    println!("wrote {out}: {:.0} MB in {:.1} s", size as f64 / 1e6, t.elapsed().as_secs_f64());
    Ok(())
}
