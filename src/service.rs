//! # service — running under systemd
//!
//! `Type=notify` readiness: [`notify`] sends systemd's `sd_notify(3)` messages
//! (`READY=1`, `STOPPING=1`, `STATUS=…`) to the datagram socket named by
//! `$NOTIFY_SOCKET`. The unit file that uses it is `tuning/systemd/ferrokeeper.service`.
//!
//! Written by hand rather than with a crate: the protocol is one datagram of
//! `KEY=VALUE` lines to a Unix socket path (or a Linux abstract name when it starts with
//! `@`), which the standard library sends in a few lines, and the crates that wrap it
//! (`sd-notify`, `libsystemd`) are not among this build's vendored dependencies.
//!
//! [`until_stopped`] is how every executor of the server (shards, commit stage, the HTTP
//! listeners) ends on a clean stop: its main future gives up when a shared flag is set.
//!
//! Must never: fail the server. Without `$NOTIFY_SOCKET` (not under systemd) every call
//! does nothing; a send that fails is reported to the caller, who logs it.

use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The environment variable systemd sets for a `Type=notify` service.
pub const NOTIFY_SOCKET_ENV: &str = "NOTIFY_SOCKET";

/// Sends `state` (newline-separated `KEY=VALUE` lines, such as `READY=1`) to systemd.
/// Returns `Ok(false)` when not started by systemd (no `$NOTIFY_SOCKET`), `Ok(true)` once
/// sent.
pub fn notify(state: &str) -> std::io::Result<bool> {
    let Some(path) = std::env::var_os(NOTIFY_SOCKET_ENV) else {
        return Ok(false);
    };
    notify_to(&path.to_string_lossy(), state)?;
    Ok(true)
}

/// Sends `state` to the notify socket at `path` (a file path, or `@name` for an
/// abstract socket).
pub fn notify_to(path: &str, state: &str) -> std::io::Result<()> {
    let socket = UnixDatagram::unbound()?;
    if let Some(name) = path.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
        socket.send_to_addr(state.as_bytes(), &addr)?;
    } else {
        socket.send_to(state.as_bytes(), path)?;
    }
    Ok(())
}

/// How often a stopping executor looks at its stop flag. A poll rather than a wakeup
/// from another thread: glommio's cross-thread channels must be connected on both ends
/// before they carry a close, and 20 wakeups a second per executor cost nothing.
const STOP_POLL: Duration = Duration::from_millis(50);

/// Runs `work` until it ends or `stop` is set; then the executor's main future ends, and
/// glommio drops its remaining tasks (connections, timers) with the executor.
pub async fn until_stopped(stop: Arc<AtomicBool>, work: impl std::future::Future<Output = ()>) {
    let watch = async {
        while !stop.load(Ordering::Acquire) {
            glommio::timer::sleep(STOP_POLL).await;
        }
    };
    futures_lite::future::or(work, watch).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_datagram_to_a_path_and_to_an_abstract_name() {
        let dir = std::env::temp_dir().join(format!("fk-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let listener = UnixDatagram::bind(&path).expect("bind");
        notify_to(&path.to_string_lossy(), "READY=1\nSTATUS=serving").expect("send");
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).expect("recv");
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=serving");
        let _ = std::fs::remove_dir_all(&dir);

        use std::os::linux::net::SocketAddrExt;
        let name = format!("fk-notify-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
            .expect("abstract name");
        let listener = UnixDatagram::bind_addr(&addr).expect("bind abstract");
        notify_to(&format!("@{name}"), "STOPPING=1").expect("send abstract");
        let n = listener.recv(&mut buf).expect("recv");
        assert_eq!(&buf[..n], b"STOPPING=1");
    }
}
