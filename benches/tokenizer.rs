//! `cargo bench --bench tokenizer`: building the tokenizers of the test models from GGUF
//! metadata (the 262k-token Gemma-3 vocabulary is the slow one), best of five. Needs
//! `UPWARD_TEST_MODEL_DIR` (bash scripts/fetch-test-models.sh fills it).

use candle_core::quantized::gguf_file::Content;
use std::time::{Duration, Instant};
use upward::gguf::Tokenizer;

fn main() {
    let dir = std::env::var_os("UPWARD_TEST_MODEL_DIR")
        .map(std::path::PathBuf::from)
        .expect("set UPWARD_TEST_MODEL_DIR (bash scripts/fetch-test-models.sh fills it)");
    for file in ["SmolLM2-135M-Instruct.Q4_1.gguf", "gemma-3-270m-q4_k_m.gguf"] {
        let path = dir.join(file);
        let mut f = std::fs::File::open(&path).unwrap_or_else(|e| {
            panic!("{}: {e}; run bash scripts/fetch-test-models.sh", path.display())
        });
        let content = Content::read(&mut f).expect("GGUF metadata");
        let mut best = Duration::MAX;
        let mut vocab = 0;
        for _ in 0..5 {
            let t = Instant::now();
            let tok = Tokenizer::from_gguf(&content).expect("tokenizer");
            best = best.min(t.elapsed());
            vocab = tok.vocab_size();
        }
        println!(
            "{file}: {vocab} tokens, tokenizer built in {:.1} ms (best of 5)",
            best.as_secs_f64() * 1e3
        );
    }
}
