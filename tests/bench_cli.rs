//! `upward bench` explains its figures: the CPU and kernels it ran, the machine's measured
//! read bandwidth, the weight bytes a decode step reads and the fraction of the bandwidth
//! decode reaches; and a llama.cpp comparison is refused unless llama.cpp ran the very
//! token ids we ran. Tiny sizes, through the binary; no timing is asserted.
#![cfg(unix)]

mod common;

use common::json_of;
use std::path::{Path, PathBuf};
use upward::gguf::GgufFile;

/// `upward bench --json` on SmolLM2 with tiny settings (a 64 MiB bandwidth buffer).
fn bench(dir: &Path) -> assert_cmd::Command {
    let mut c = common::upward(dir);
    c.arg("--model").arg(common::smol()).args([
        "--threads",
        "2",
        "bench",
        "--json",
        "--gen-tokens",
        "4",
        "--prompt-tokens",
        "8",
        "--runs",
        "1",
        "--bandwidth-mib",
        "64",
    ]);
    c
}

fn f64_of(v: &serde_json::Value, k: &str) -> f64 {
    v[k].as_f64().unwrap_or_else(|| panic!("{k} is not a number: {v}"))
}

#[test]
fn bench_reports_bandwidth_bytes_per_token_cpu_and_kernels() {
    let dir = tempfile::tempdir().unwrap();
    let v = json_of(&bench(dir.path()).output().unwrap());
    // The machine: CPU model and flags, the kernels that ran, its read bandwidth.
    assert!(v["cpu"]["model"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    assert!(v["cpu"]["simd_flags"].is_array(), "{v}");
    let kernels = v["kernels"].as_str().unwrap();
    assert!(["portable", "avx2", "avx-vnni", "avx512-vnni"].contains(&kernels), "{kernels}");
    let bw = f64_of(&v, "bandwidth_gb_s");
    assert!(bw > 0.0 && bw.is_finite(), "{v}");
    assert_eq!(v["bandwidth"]["threads"], 2);
    assert!(v["bandwidth"]["buffer_bytes"].as_u64().unwrap() >= 64 << 20);
    // The bytes per token come from the tensors: SmolLM2's output matrix is its embedding
    // table, read whole, plus one row of it for the input token.
    let file = GgufFile::open(&common::smol()).unwrap();
    let embed = file.tensor("token_embd.weight").unwrap();
    let traffic = &v["decode_bytes"];
    assert_eq!(traffic["tied_output"], true);
    assert_eq!(traffic["output_matrix_bytes"].as_u64(), Some(embed.len as u64));
    let per_token = v["decode_bytes_per_token"].as_u64().unwrap();
    let by_dtype: u64 =
        traffic["by_dtype"].as_object().unwrap().values().map(|b| b.as_u64().unwrap()).sum();
    assert_eq!(by_dtype, per_token, "{traffic}");
    assert!(traffic["by_dtype"]["q4_1"].as_u64().unwrap() > 0, "{traffic}");
    // Nearly the whole file is matrices; the rest is metadata, norms and the embedding
    // table's rows beyond the one read.
    let file_bytes = v["model_file_bytes"].as_u64().unwrap();
    assert!(per_token < file_bytes && per_token > file_bytes / 10 * 9, "{per_token} {file_bytes}");
    // The fraction is exactly bytes per token x decode rate / bandwidth.
    let fraction = f64_of(&v, "bandwidth_fraction");
    assert!(fraction > 0.0 && fraction < 1.5, "bandwidth_fraction {fraction}: {v}");
    let want = per_token as f64 * f64_of(&v, "decode_tok_s") / (bw * 1e9);
    assert!((fraction - want).abs() <= 1e-9 * want, "{fraction} vs {want}");
    assert!(v["kv_read_bytes_per_token"].as_u64().unwrap() > 0);
}

#[test]
fn bench_names_the_kernels_upward_isa_chose() {
    let dir = tempfile::tempdir().unwrap();
    let v = json_of(&bench(dir.path()).env("UPWARD_ISA", "portable").output().unwrap());
    assert_eq!(v["kernels"], "portable");
}

/// A stand-in for the Python that runs bench/llama_cpp_bench.py: it answers with fixed
/// figures and, as `evaluated_ids`, whatever `ids` expands to in a shell where `$tokens`
/// is the file of token ids upward passed.
fn fake_python(dir: &Path, ids: &str) -> PathBuf {
    let path = dir.join("fake-python");
    let script = format!(
        "#!/bin/sh\nwhile [ $# -gt 0 ]; do [ \"$1\" = --tokens ] && tokens=$2; shift; done\n\
         echo '{{\"load_s\": 0.5, \"prefill_tok_s\": 100.0, \"decode_tok_s\": 50.0, \
         \"peak_rss_bytes\": 1000, \"system_info\": \"CPU : AVX2 = 1\", \
         \"evaluated_ids\": '\"{ids}\"'}}'\n"
    );
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn a_comparison_reports_llama_cpp_against_the_same_bandwidth() {
    let dir = tempfile::tempdir().unwrap();
    let python = fake_python(dir.path(), "$(cat \"$tokens\")");
    let v = json_of(
        &bench(dir.path())
            .args(["--compare", "llama.cpp", "--python"])
            .arg(&python)
            .output()
            .unwrap(),
    );
    let r = &v["llama_cpp"];
    assert_eq!(r["decode_tok_s"], 50.0);
    assert_eq!(r["system_info"], "CPU : AVX2 = 1");
    let per_token = v["decode_bytes_per_token"].as_u64().unwrap() as f64;
    let want = per_token * 50.0 / (f64_of(&v, "bandwidth_gb_s") * 1e9);
    let got = f64_of(r, "bandwidth_fraction");
    assert!((got - want).abs() <= 1e-9 * want, "{got} vs {want}");
    assert!((f64_of(r, "decode_weight_gb_s") - per_token * 50.0 / 1e9).abs() < 1e-9);
}

#[test]
fn a_comparison_on_other_token_ids_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // llama.cpp re-tokenized, say: the same count, the first id different.
    let python = fake_python(dir.path(), "$(sed 's/^\\[[0-9]*/[0/' \"$tokens\")");
    let out = bench(dir.path())
        .args(["--compare", "llama.cpp", "--python"])
        .arg(&python)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "accepted: {}", String::from_utf8_lossy(&out.stdout));
    assert!(err.contains("differ from ours (12 tokens) from position 0"), "{err}");
}

#[test]
fn a_bandwidth_buffer_beyond_memory_is_refused_before_loading() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::upward(dir.path())
        .arg("--model")
        .arg(dir.path().join("no-such-model.gguf"))
        .args(["bench", "--json", "--bandwidth-mib", "999999999999"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("--bandwidth-mib 999999999999 is more than half the available memory"),
        "{err}"
    );
}

/// `upward bench --serve`: simulated users play role-play turns against a real `upward
/// serve`; each level reports its turns, that every one was saved, the server's slots and
/// how many replies it decoded together.
#[test]
fn bench_serve_plays_turns_against_a_real_server() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = common::upward(dir.path());
    c.arg("--model").arg(common::smol()).args(["--threads", "2", "bench", "--json"]);
    c.args(["--serve", "1,3", "--serve-turns", "1", "--reply-tokens", "8", "--slots", "2"]);
    let v = json_of(&c.output().unwrap());
    let levels = v.as_array().unwrap_or_else(|| panic!("a list of levels: {v}"));
    assert_eq!(levels.len(), 2, "{v}");
    for (level, users) in levels.iter().zip([1, 3]) {
        assert_eq!(level["users"], users, "{v}");
        assert_eq!(level["turns"], users, "one turn each: {v}");
        assert_eq!((level["failed"].as_u64(), level["all_saved"].as_bool()), (Some(0), Some(true)));
        assert_eq!(level["slots"], 2, "{v}");
        let batch = level["largest_batch"].as_u64().unwrap();
        assert!((1..=2).contains(&batch), "at most the slots: {v}");
    }
}
