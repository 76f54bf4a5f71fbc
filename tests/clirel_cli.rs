//! Reliability of the command line without a model: where `sessions export -o` and
//! `progress --html` write, what reaches the terminal, who can read the session database,
//! and how errors are reported.

use assert_cmd::Command;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use upward::lang::Lang;
use upward::store::{NewSession, Role, SessionKind, Store, TurnRecord};

fn upward(data: &Path) -> Command {
    let mut c = Command::cargo_bin("upward").unwrap();
    c.arg("--data-dir").arg(data).env("LANG", "en_US.UTF-8").env_remove("LC_ALL");
    c.env("NO_COLOR", "1").env_remove("RUST_BACKTRACE");
    c
}

/// A role-play whose texts carry terminal escapes; returns its id.
fn hostile_session(data: &Path) -> i64 {
    let store = Store::open(Some(data)).unwrap();
    let mut s = NewSession::new(SessionKind::Roleplay, Lang::En);
    s.scenario = Some("weekly-report".into());
    s.title = Some("Title\x1b]0;pwned\x07".into());
    let id = store.create_session(&s).unwrap();
    store
        .append_turn(id, &TurnRecord::new(Role::User, "clear\x1b[2J bell\x07 cr\roverwrite"))
        .unwrap();
    store
        .append_turn(id, &TurnRecord::new(Role::Boss, "flip \u{202e}txet\u{202c} c1 \u{9b}31m"))
        .unwrap();
    id
}

const RAW: [char; 6] = ['\x1b', '\x07', '\r', '\u{202e}', '\u{9b}', '\u{202c}'];

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn export_writes_through_links_fifos_and_stdout_and_refuses_missing_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let id = hostile_session(&data).to_string();
    let export = |out: &Path| {
        upward(&data).args(["sessions", "export", &id, "-o"]).arg(out).output().unwrap()
    };

    // A symbolic link: the target is written, the link stays a link.
    let real = tmp.path().join("real.md");
    std::fs::write(&real, "old").unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o640)).unwrap();
    let link = tmp.path().join("link.md");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let out = export(&link);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert!(std::fs::read_to_string(&real).unwrap().contains("# Session"));
    assert_eq!(mode(&real), 0o640, "the target keeps its mode");

    // A link to nothing is refused with a reason, and nothing is created.
    let dangling = tmp.path().join("dangling.md");
    std::os::unix::fs::symlink(tmp.path().join("nowhere.md"), &dangling).unwrap();
    let out = export(&dangling);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("symbolic link"), "{out:?}");
    assert!(!tmp.path().join("nowhere.md").exists());

    // A missing folder is an error, not created.
    let out = export(&tmp.path().join("no/such/dir/x.md"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"), "{out:?}");
    assert!(!tmp.path().join("no").exists());

    // A new file is private.
    let new = tmp.path().join("new.md");
    assert!(export(&new).status.success());
    assert_eq!(mode(&new), 0o600);

    // A FIFO is written into, not replaced.
    let fifo = tmp.path().join("fifo");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let mut reader = std::process::Command::new("cat")
        .arg(&fifo)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = export(&fifo);
    let ok = out.status.success();
    if !std::fs::metadata(&fifo).unwrap().file_type().is_fifo() {
        let _ = reader.kill();
        panic!("the FIFO was replaced by a regular file");
    }
    let got = reader.wait_with_output().unwrap();
    assert!(ok, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&got.stdout).contains("# Session"));

    // `-` and /dev/stdout are standard output, exact bytes (not a terminal).
    for target in ["-", "/dev/stdout"] {
        let out = export(Path::new(target));
        assert!(out.status.success(), "{target}: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("clear\x1b[2J"), "{target}: {text}");
    }
    assert!(std::fs::symlink_metadata("/dev/stdout").unwrap().file_type().is_symlink());

    // A full device is an error, and stays a device.
    let out = export(Path::new("/dev/full"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("No space left"), "{out:?}");
    assert!(std::fs::metadata("/dev/full").unwrap().file_type().is_char_device());
}

#[test]
fn progress_html_uses_the_same_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    hostile_session(&data);
    let real = tmp.path().join("page.html");
    std::fs::write(&real, "old").unwrap();
    let link = tmp.path().join("link.html");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let out = upward(&data).args(["progress", "--html"]).arg(&link).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert!(std::fs::read_to_string(&real).unwrap().contains("<html"));
    let out = upward(&data)
        .args(["progress", "--html"])
        .arg(tmp.path().join("nope/p.html"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(!tmp.path().join("nope").exists());
    let out = upward(&data).args(["progress", "--html", "-"]).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("<html"));
}

#[test]
fn saved_sessions_show_control_characters_instead_of_obeying_them() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let id = hostile_session(&data).to_string();
    let out = upward(&data).args(["sessions", "show", &id]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains(RAW), "raw control characters reached the terminal: {text:?}");
    for shown in ["clear^[[2J", "bell^G", "cr^Moverwrite", "<U+202E>txet<U+202C>", "<U+009B>31m"] {
        assert!(text.contains(shown), "{shown} missing from {text}");
    }
    let out = upward(&data).args(["sessions", "list"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains(RAW) && text.contains("^[]0;pwned^G"), "{text:?}");
    // JSON keeps the exact text (escaped by the JSON encoder).
    let out = upward(&data).args(["sessions", "show", &id, "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["turns"][0]["text"], "clear\x1b[2J bell\x07 cr\roverwrite");
}

#[test]
fn critique_shows_a_hostile_draft_visibly() {
    let tmp = tempfile::tempdir().unwrap();
    let draft = tmp.path().join("draft.txt");
    std::fs::write(
        &draft,
        "王总，华东项目\x1b[2J卡在法务审核，\x07我已经约了客户两次。想请您周三前帮忙打个电话给对方副总。\r\n谢谢！",
    )
    .unwrap();
    let out = upward(&tmp.path().join("data"))
        .args(["critique", "--no-model"])
        .arg(&draft)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains(RAW), "raw control characters reached the terminal: {text:?}");
    assert!(text.contains("^[[2J"), "the quoted draft should show the escape: {text}");
    let out = upward(&tmp.path().join("data"))
        .args(["critique", "--no-model", "--json"])
        .arg(&draft)
        .output()
        .unwrap();
    assert!(serde_json::from_slice::<serde_json::Value>(&out.stdout).is_ok());
}

#[test]
fn the_database_and_its_folder_are_private() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("new-data");
    let out = upward(&data).args(["sessions", "list"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(mode(&data), 0o700);
    let db = data.join("upward.db");
    assert_eq!(mode(&db), 0o600);
    // While a connection holds the write-ahead log open, its files are private too.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("PRAGMA journal_mode=WAL; CREATE TEMP TABLE t(x);").unwrap();
    conn.query_row("SELECT count(*) FROM sessions", [], |_| Ok(())).unwrap();
    let out = upward(&data).args(["sessions", "list"]).output().unwrap();
    assert!(out.status.success());
    for f in ["upward.db-wal", "upward.db-shm"] {
        assert_eq!(mode(&data.join(f)), 0o600, "{f}");
    }
    drop(conn);

    // A database made world-readable by an older version is tightened; a folder named
    // with --data-dir keeps the mode its owner gave it.
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(upward(&data).args(["sessions", "list"]).output().unwrap().status.success());
    assert_eq!(mode(&db), 0o600);
    assert_eq!(mode(&data), 0o755);

    // The default data folder is upward's own: tightened.
    let xdg = tmp.path().join("xdg");
    let own = xdg.join("upward");
    std::fs::create_dir_all(&own).unwrap();
    std::fs::set_permissions(&own, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::cargo_bin("upward")
        .unwrap()
        .args(["sessions", "list"])
        .env("XDG_DATA_HOME", &xdg)
        .env("HOME", tmp.path())
        .env_remove("UPWARD_DATA_DIR")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(mode(&own), 0o700);
    assert_eq!(mode(&own.join("upward.db")), 0o600);
}

#[test]
fn errors_are_reported_once_without_backtraces() {
    let tmp = tempfile::tempdir().unwrap();
    let out = upward(&tmp.path().join("data"))
        .env("RUST_BACKTRACE", "1")
        .args(["roleplay", "--scenario", "weekly-report", "--script"])
        .arg(tmp.path().join("missing.txt"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("missing.txt"), "{err}");
}
