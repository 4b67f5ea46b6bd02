//! The files a reconfig leaves behind, as ZooKeeper keeps them: the new server lines in
//! `<zoo.cfg>.dynamic.<hex version>` (no version line: the name carries it), and
//! `zoo.cfg` pointing there with `dynamicConfigFile=` instead of its own server lines, so
//! that a restart with the same command line comes back with the new membership.
//!
//! ZooKeeper rewrites `zoo.cfg` through `java.util.Properties`, losing comments and
//! order; ferrokeeper keeps every other line as it was. The first rewrite saves the
//! original as `zoo.cfg.bak`, as ZooKeeper does when it first splits a static file.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::membership::Membership;

/// Writes the dynamic file for `membership` beside `config_file` and points
/// `config_file` at it. `my_id`'s client address moves out of `zoo.cfg` when its server
/// line carries one (`clientPort`/`clientPortAddress` would contradict it). Returns the
/// dynamic file's path.
pub fn write(config_file: &Path, membership: &Membership, my_id: u64) -> std::io::Result<PathBuf> {
    let mut name = config_file.as_os_str().to_owned();
    name.push(format!(".dynamic.{:x}", membership.version));
    let dynamic = PathBuf::from(name);
    replace(&dynamic, membership.server_lines().as_bytes())?;
    let backup = {
        let mut b = config_file.as_os_str().to_owned();
        b.push(".bak");
        PathBuf::from(b)
    };
    let text = std::fs::read_to_string(config_file)?;
    if !backup.exists() {
        replace(&backup, text.as_bytes())?;
    }
    let erase_client = membership
        .servers
        .get(&my_id)
        .is_some_and(|s| s.client.is_some());
    let mut out = String::new();
    for line in text.lines() {
        let key = line.split(['=', ':']).next().unwrap_or("").trim();
        let dropped = key.starts_with("server.")
            || key.starts_with("group.")
            || key.starts_with("weight.")
            || key == "dynamicConfigFile"
            || (erase_client && (key == "clientPort" || key == "clientPortAddress"));
        if !dropped {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push_str(&format!("dynamicConfigFile={}\n", dynamic.display()));
    replace(config_file, out.as_bytes())?;
    Ok(dynamic)
}

/// Replaces `path` with `bytes` through a synced temporary file and a rename.
fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_dynamic_file_and_points_zoo_cfg_at_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = dir.path().join("zoo.cfg");
        std::fs::write(
            &cfg,
            "# mine\ntickTime=2000\nclientPort=2181\nserver.1=127.0.0.1:2888:3888;2181\n\
             server.2=127.0.0.1:2889:3889;2182\ndataDir=/d\n",
        )
        .expect("write");
        let m = Membership::parse(
            "server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\nversion=100000006",
            false,
        )
        .expect("parse");
        let dynamic = write(&cfg, &m, 1).expect("write");
        assert_eq!(
            dynamic.file_name().and_then(|n| n.to_str()),
            Some("zoo.cfg.dynamic.100000006")
        );
        assert_eq!(
            std::fs::read_to_string(&dynamic).expect("read"),
            "server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181"
        );
        let text = std::fs::read_to_string(&cfg).expect("read");
        assert_eq!(
            text,
            format!(
                "# mine\ntickTime=2000\ndataDir=/d\ndynamicConfigFile={}\n",
                dynamic.display()
            )
        );
        assert!(dir.path().join("zoo.cfg.bak").exists());
        // The rewritten file loads, with the membership from the dynamic file.
        let (config, _) = crate::config::Config::load(&cfg).expect("load");
        let _ = config;
    }
}
