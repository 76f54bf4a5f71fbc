//! The engine on a CUDA GPU (built with `--features cuda` only; scripts/gpu-bench.sh runs
//! it): the same model on the GPU and on the CPU ranks the next token alike and continues
//! greedily alike, and the GPU still agrees with llama.cpp's reference logits. With the
//! feature on and no usable GPU, these tests fail and say so.
#![cfg(feature = "cuda")]

mod common;

use candle_core::Device;
use common::model_path;
use upward::engine::{Model, ModelConfig};
use upward::gguf::GgufFile;

fn load(path: &std::path::Path, dev: &Device) -> Model {
    let file = GgufFile::open(path).expect("open model");
    let cfg = ModelConfig::from_gguf(&file).expect("config");
    Model::load(&file, cfg, 512, dev).expect("load")
}

fn gpu() -> Device {
    Device::new_cuda(0).unwrap_or_else(|e| panic!("built with --features cuda, no GPU: {e}"))
}

fn argmax(v: &[f32]) -> usize {
    v.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(i, _)| i)
}

fn pearson(a: &[f32], b: &[f32]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f32>() as f64 / n, b.iter().sum::<f32>() as f64 / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (x as f64 - ma, y as f64 - mb);
        sab += x * y;
        saa += x * x;
        sbb += y * y;
    }
    sab / (saa * sbb).sqrt()
}

/// Prefill llama.cpp's reference prompt on both devices, then 16 greedy tokens on each.
fn gpu_matches_cpu(reference: &str) {
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reference).unwrap()).unwrap();
    let path = model_path(r["file"].as_str().unwrap());
    let ids: Vec<u32> =
        r["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
    let (mut cpu, mut gpu) = (load(&path, &Device::Cpu), load(&path, &gpu()));
    let mut lc = cpu.forward(&ids).unwrap().to_vec1::<f32>().unwrap();
    let mut lg = gpu.forward(&ids).unwrap().to_vec1::<f32>().unwrap();
    let corr = pearson(&lc, &lg);
    println!("{reference}: GPU vs CPU logits correlation {corr:.5}");
    assert!(corr > 0.99, "GPU logits disagree with the CPU's (correlation {corr})");
    assert_eq!(
        argmax(&lg),
        r["argmax"].as_u64().unwrap() as usize,
        "top token differs from llama.cpp"
    );
    let (mut on_cpu, mut on_gpu) = (Vec::new(), Vec::new());
    for _ in 0..16 {
        let (tc, tg) = (argmax(&lc) as u32, argmax(&lg) as u32);
        on_cpu.push(tc);
        on_gpu.push(tg);
        lc = cpu.forward(&[tc]).unwrap().to_vec1::<f32>().unwrap();
        lg = gpu.forward(&[tg]).unwrap().to_vec1::<f32>().unwrap();
    }
    let same = on_cpu.iter().zip(&on_gpu).take_while(|(a, b)| a == b).count();
    println!("greedy tokens equal on GPU and CPU: {same}/16");
    assert!(same >= 8, "GPU greedy output diverges after {same}: {on_gpu:?} vs {on_cpu:?}");
}

#[test]
fn smollm2_on_gpu_matches_cpu() {
    gpu_matches_cpu("tests/data/logits/smollm2-135m.json");
}

#[test]
fn gemma3_on_gpu_matches_cpu() {
    gpu_matches_cpu("tests/data/logits/gemma3-270m.json");
}
