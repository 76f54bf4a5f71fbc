//! One binary, every kernel path: the quantized kernels pick their SIMD level at run time
//! (`kernels::isa::current()`, lowered by `UPWARD_ISA`), so a release binary copied to
//! another x86 CPU runs that CPU's best path. Each level this CPU supports is run here in a
//! child process (the level is read once per process), on both real test models: the
//! logits agree with llama.cpp's, and a conversation continued from the KV cache gives the
//! logits of a fresh prefill.

mod common;

use std::process::Command;

use candle_core::Device;
use common::model_path;
use upward::engine::{Model, ModelConfig};
use upward::gguf::GgufFile;
use upward::kernels::isa::{self, Isa};

/// Set in the child processes: the level they must run.
const CHILD: &str = "UPWARD_DISPATCH_TEST_LEVEL";

fn load(path: &std::path::Path) -> Model {
    let file = GgufFile::open(path).expect("open model");
    let cfg = ModelConfig::from_gguf(&file).expect("config");
    Model::load(&file, cfg, 256, &Device::Cpu).expect("load")
}

fn argmax(v: &[f32]) -> usize {
    v.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i).unwrap()
}

/// The reference's prompt gives llama.cpp's top token and at least 8 of its 16 greedy
/// tokens; then a prompt decoded token by token equals its fresh prefill.
fn check_model(reference: &str) {
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reference).unwrap()).unwrap();
    let ids: Vec<u32> =
        r["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
    let path = model_path(r["file"].as_str().unwrap());
    let mut model = load(&path);
    let mut logits = model.forward(&ids).unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(argmax(&logits), r["argmax"].as_u64().unwrap() as usize, "{reference}: top");
    let want: Vec<u32> =
        r["greedy"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
    let mut got = Vec::new();
    for _ in 0..want.len() {
        let t = argmax(&logits) as u32;
        got.push(t);
        logits = model.forward(&[t]).unwrap().to_vec1::<f32>().unwrap();
    }
    let same = got.iter().zip(&want).take_while(|(a, b)| a == b).count();
    assert!(same >= 8, "{reference}: greedy {got:?} vs llama.cpp {want:?}");
    // The decoded continuation equals a fresh prefill of prompt + continuation.
    let mut all = ids.clone();
    all.extend_from_slice(&got);
    let full = load(&path).forward(&all).unwrap().to_vec1::<f32>().unwrap();
    let diff = logits.iter().zip(&full).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(diff < 1e-3, "{reference}: decode vs prefill differ by {diff}");
}

fn child(level: &str) {
    let want = Isa::parse(level).expect("a level name");
    assert_eq!(isa::current(), want, "UPWARD_ISA={level} did not select {level}");
    check_model("tests/data/logits/smollm2-135m.json");
    check_model("tests/data/logits/gemma3-270m.json");
}

#[test]
fn every_supported_kernel_level_runs_both_models() {
    if let Ok(level) = std::env::var(CHILD) {
        return child(&level);
    }
    let levels: Vec<Isa> = isa::ALL.into_iter().filter(|&l| isa::supports(l)).collect();
    assert!(levels.contains(&Isa::Portable) && levels.contains(&isa::detected()));
    println!("levels on this CPU: {:?}", levels.iter().map(|l| l.name()).collect::<Vec<_>>());
    let exe = std::env::current_exe().unwrap();
    for level in levels {
        let out = Command::new(&exe)
            .args(["--exact", "every_supported_kernel_level_runs_both_models", "--nocapture"])
            .env(CHILD, level.name())
            .env("UPWARD_ISA", level.name())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "level {}: {}\n{}",
            level.name(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A level the CPU lacks, or a name that is no level, is ignored with a warning: the
/// process keeps a level it can run.
#[test]
fn unsupported_or_unknown_levels_fall_back_to_one_the_cpu_runs() {
    if std::env::var(CHILD).is_ok() {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let name = "unsupported_or_unknown_levels_fall_back_to_one_the_cpu_runs_child";
    for (asked, warns) in [("sse9", true), ("avx512-vnni", !isa::supports(Isa::Avx512Vnni))] {
        let out = Command::new(&exe)
            .args(["--exact", name, "--nocapture", "--include-ignored"])
            .env("UPWARD_ISA", asked)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "UPWARD_ISA={asked}: {stderr}");
        assert_eq!(stderr.contains("UPWARD_ISA="), warns, "UPWARD_ISA={asked}: {stderr}");
    }
}

/// The child of the test above (ignored on its own).
#[test]
#[ignore = "run by unsupported_or_unknown_levels_fall_back_to_one_the_cpu_runs"]
fn unsupported_or_unknown_levels_fall_back_to_one_the_cpu_runs_child() {
    let level = isa::current();
    assert!(isa::supports(level));
    assert_eq!(level, isa::detected());
    // The kernels run at that level: a product through them is finite and non-zero.
    let cols = 256;
    let w: Vec<u8> = (0..cols * 34 / 32 * 4).map(|i| (i * 37 % 251) as u8 & 0x3f).collect();
    let x: Vec<f32> = (0..cols).map(|i| (i as f32 * 0.1).sin()).collect();
    let mut out = [0f32; 4];
    upward::kernels::matmul(candle_core::quantized::GgmlDType::Q8_0, &w, 4, cols, &x, 1, &mut out)
        .unwrap();
    assert!(out.iter().all(|v| v.is_finite()) && out.iter().any(|&v| v != 0.0), "{out:?}");
}
