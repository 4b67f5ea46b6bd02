//! Runs the `ferrokeeper-tune` binary as an operator would. The host's values are not
//! asserted (they belong to whatever machine runs the tests), only the shape of the answer.

use std::path::PathBuf;
use std::process::Command;

use ferrokeeper_tuning::check::CHECK_NAMES;

const BIN: &str = env!("CARGO_BIN_EXE_ferrokeeper-tune");

/// A fresh, empty directory under `target/tmp` for one test.
fn data_dir(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("ferrokeeper-tune-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the test's data directory");
    dir
}

#[test]
fn one_second_probe_prints_every_check_and_leaves_no_file() {
    let dir = data_dir("text");
    let out = Command::new(BIN)
        .args(["--probe-seconds", "1", "--data-dir"])
        .arg(&dir)
        .output()
        .expect("run ferrokeeper-tune");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    for name in CHECK_NAMES {
        assert!(
            stdout.contains(&format!("] {name}: ")),
            "check {name} missing from:\n{stdout}"
        );
    }
    for key in [
        "ferrokeeper.shards=",
        "ferrokeeper.commitBatchMax=",
        "preAllocSize=",
        "maxClientCnxns=",
        "maxCnxns=",
    ] {
        assert!(
            stdout.lines().any(|l| l.starts_with(key)),
            "{key} missing from:\n{stdout}"
        );
    }
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert!(left.is_empty(), "probe files left behind: {left:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn json_output_is_one_document_with_every_check() {
    let dir = data_dir("json");
    let out = Command::new(BIN)
        .args(["--json", "--probe-seconds", "0", "--data-dir"])
        .arg(&dir)
        .output()
        .expect("run ferrokeeper-tune");
    assert!(out.status.success(), "exit {:?}", out.status);
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    let names: Vec<&str> = v["checks"]
        .as_array()
        .expect("checks is an array")
        .iter()
        .map(|c| c["name"].as_str().expect("a check has a name"))
        .collect();
    assert_eq!(names, CHECK_NAMES);
    for c in v["checks"].as_array().unwrap() {
        let status = c["status"].as_str().unwrap();
        assert!(["ok", "unknown", "warn", "fail"].contains(&status), "{c}");
    }
    assert!(v["recommendations"]["shards"]["value"].as_u64().unwrap() >= 1);
    assert!(v["zoo_cfg"]
        .as_str()
        .unwrap()
        .contains("ferrokeeper.commitBatchMax="));
    // Without a time budget only the instant parts of the disk probe ran.
    assert!(v["host"]["disk"]["sync_fallocated"].is_null());
    assert!(v["host"]["disk"]["fallocate"].is_object());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn missing_data_dir_is_a_failed_check_not_a_crash() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ferrokeeper-tune-no-such-dir");
    let out = Command::new(BIN)
        .args(["--json", "--probe-seconds", "0", "--data-dir"])
        .arg(&dir)
        .output()
        .expect("run ferrokeeper-tune");
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let fs = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "data_dir_filesystem")
        .unwrap();
    assert_eq!(fs["status"], "fail");
    assert!(fs["fix"].as_str().unwrap().contains("mkdir -p"));

    // --strict turns a failed check into exit status 1.
    let out = Command::new(BIN)
        .args(["--strict", "--probe-seconds", "0", "--data-dir"])
        .arg(&dir)
        .output()
        .expect("run ferrokeeper-tune");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn bad_arguments_are_usage_errors() {
    let out = Command::new(BIN)
        .args(["--probe-seconds", "-1"])
        .output()
        .expect("run ferrokeeper-tune");
    assert_eq!(out.status.code(), Some(2));
}

/// `--apply` end to end, as root, inside a private network namespace: somaxconn and
/// tcp_max_syn_backlog are per network namespace, so the host's values are never touched.
/// Skipped (with a note) where `unshare -n` is not allowed: not root, or a container
/// without CAP_SYS_ADMIN. THP is global and is left alone by this test: it only runs
/// `--apply` where THP is not `always`, so that nothing outside the namespace changes.
#[test]
fn apply_raises_listen_queues_in_a_private_network_namespace() {
    let thp =
        std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
    if thp.contains("[always]") {
        eprintln!("skipped: THP is 'always' here and --apply would change it host-wide");
        return;
    }
    let can_unshare = Command::new("unshare")
        .args(["-n", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !can_unshare {
        eprintln!("skipped: unshare -n is not permitted here");
        return;
    }
    let dir = data_dir("apply");
    let script = format!(
        "echo 128 > /proc/sys/net/core/somaxconn && \
         echo 256 > /proc/sys/net/ipv4/tcp_max_syn_backlog && \
         {BIN} --apply --probe-seconds 0 --data-dir {} && \
         echo after $(cat /proc/sys/net/core/somaxconn) $(cat /proc/sys/net/ipv4/tcp_max_syn_backlog)",
        dir.display()
    );
    let out = Command::new("unshare")
        .args(["-n", "sh", "-c", &script])
        .output()
        .expect("run unshare");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let setting = stdout
        .find("setting net.core.somaxconn: 128 -> 4096")
        .expect("announced");
    let done = stdout
        .find("done: net.core.somaxconn = 4096")
        .expect("done");
    assert!(setting < done, "announced before it is done:\n{stdout}");
    assert!(
        stdout.contains("sysctl -w net.core.somaxconn=128"),
        "{stdout}"
    );
    assert!(
        stdout.contains("sysctl -w net.ipv4.tcp_max_syn_backlog=256"),
        "{stdout}"
    );
    assert!(stdout.contains("after 4096 4096"), "{stdout}");
    std::fs::remove_dir_all(&dir).unwrap();
}
