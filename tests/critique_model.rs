//! Who judges in `upward critique` with a model on disk: the catalogue's measured `judge`
//! flag for known files; for an unknown file, nobody but the rules until a calibration
//! for that very file says the model may judge; and a judging model's score does not
//! depend on `--lang`. Needs the test models (`UPWARD_TEST_MODEL_DIR`).

use assert_cmd::Command;
use serde_json::Value;
use std::path::{Path, PathBuf};
use upward::critique::judge::{labelled_set_digest, Agreement, Calibration, CalibrationStore};

fn model_dir() -> PathBuf {
    std::env::var_os("UPWARD_TEST_MODEL_DIR")
        .map(PathBuf::from)
        .expect("set UPWARD_TEST_MODEL_DIR to the folder with the test models")
}

fn critique(model: &Path, cache: &Path, draft: &str, extra: &[&str]) -> Value {
    let out = Command::cargo_bin("upward")
        .unwrap()
        .env("UPWARD_MODEL", model)
        .env("UPWARD_CACHE_DIR", cache)
        .env_remove("UPWARD_KNOWLEDGE_DIR")
        .args(["critique", "--json"])
        .args(extra)
        .arg("-")
        .write_stdin(draft)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&out).expect("the JSON parses")
}

const MIXED: &str = "Hi 王总，华信银行 deal 卡在 security review，客户 wants 15% off by next Friday. 我已经 called 刘处长 twice. Could you 帮我 escalate to their CIO?";

#[test]
fn gemma_from_the_catalogue_does_not_judge() {
    let cache = tempfile::tempdir().unwrap();
    let gemma = model_dir().join("gemma-3-270m-q4_k_m.gguf");
    let v = critique(&gemma, cache.path(), MIXED, &["--kind", "help"]);
    assert_eq!(v["model"], "gemma3-270m");
    assert_eq!(v["judge"]["by"], "catalogue");
    assert_eq!(v["judge"]["judge"], false);
    assert_eq!(v["statuses_from"], "rules");
    assert!(v["comment"].is_string() && v["rewrite"].is_string(), "{v}");
    assert!(["model", "rules"].contains(&v["comment_from"].as_str().unwrap()));
}

#[test]
fn an_unknown_model_judges_only_after_calibration() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    // SmolLM2 under a name no catalogue entry has: an unknown model.
    let unknown = dir.path().join("mystery-model.gguf");
    std::os::unix::fs::symlink(model_dir().join("SmolLM2-135M-Instruct.Q4_1.gguf"), &unknown)
        .unwrap();
    let v = critique(&unknown, &cache, MIXED, &["--kind", "help"]);
    assert_eq!(v["judge"]["by"], "unmeasured", "{v}");
    assert_eq!(v["statuses_from"], "rules");

    // A calibration of this very file that found the model helps (what `--calibrate`
    // stores when the model's agreement is at least the rules').
    let same = Agreement { macro_agreement: 0.9, ..Agreement::default() };
    let c = Calibration {
        rules: same.clone(),
        model: same,
        judge: true,
        labelled_set: labelled_set_digest(),
    };
    CalibrationStore::new(cache.join("calibration")).save(&unknown, &c).unwrap();
    let en = critique(&unknown, &cache, MIXED, &["--kind", "help", "--lang", "en"]);
    assert_eq!(en["judge"]["by"], "calibration", "{en}");
    assert_eq!(en["statuses_from"], "model");
    // The model judges in the draft's language whatever the feedback's language: the
    // score is the same with --lang zh.
    let zh = critique(&unknown, &cache, MIXED, &["--kind", "help", "--lang", "zh"]);
    assert_eq!(zh["statuses_from"], "model");
    assert_eq!(en["score"], zh["score"], "en {en}\nzh {zh}");
    let statuses = |v: &Value| -> Vec<Value> {
        v["criteria"].as_array().unwrap().iter().map(|c| c["status"].clone()).collect()
    };
    assert_eq!(statuses(&en), statuses(&zh));
}
