//! `UPWARD_DEVICE` through the `upward` binary: `cpu` answers as the default does on a CPU
//! build; an unknown name, or a GPU this build lacks, is a clear error (never a silent run
//! on the CPU, which would pass off CPU figures as GPU ones).

mod common;

use common::upward_smol;

const PROMPT: &str = "My boss wants the weekly report by Friday. What should I put first?";

fn chat(dir: &std::path::Path, device: Option<&str>) -> std::process::Output {
    let mut c = upward_smol(dir);
    c.args(["chat", "--no-save", "--prompt", PROMPT, "--temperature", "0"]);
    c.args(["--max-tokens", "8"]);
    match device {
        Some(d) => c.env("UPWARD_DEVICE", d),
        None => c.env_remove("UPWARD_DEVICE"),
    };
    c.output().unwrap()
}

#[cfg(not(any(feature = "cuda", feature = "metal")))]
#[test]
fn cpu_device_answers_as_the_default_does() {
    use common::stdout_of;
    let dir = tempfile::tempdir().unwrap();
    let default = stdout_of(&chat(dir.path(), None));
    assert!(!default.trim().is_empty(), "no answer on the default device");
    assert_eq!(stdout_of(&chat(dir.path(), Some("cpu"))), default);
    assert_eq!(stdout_of(&chat(dir.path(), Some(" CPU "))), default);
}

#[test]
fn unknown_device_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = chat(dir.path(), Some("gpu"));
    assert!(!out.status.success(), "UPWARD_DEVICE=gpu was accepted");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("UPWARD_DEVICE=\"gpu\" is not a device"), "stderr: {err}");
    assert!(err.contains("auto, cpu, cuda or metal"), "stderr: {err}");
    assert!(!err.contains("panicked"), "stderr: {err}");
}

#[cfg(not(feature = "cuda"))]
#[test]
fn cuda_on_a_cpu_build_says_how_to_build_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = chat(dir.path(), Some("cuda"));
    assert!(!out.status.success(), "UPWARD_DEVICE=cuda ran on a build without CUDA");
    assert!(out.stdout.is_empty(), "it answered: {}", String::from_utf8_lossy(&out.stdout));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("built without cuda"), "stderr: {err}");
    assert!(err.contains("--features cuda"), "stderr: {err}");
}
