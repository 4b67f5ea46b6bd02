//! Requests to the AdminServer and the metrics provider: routing, the checks ZooKeeper's
//! `Commands.runCommand` makes before a command runs, and the two commands that are more
//! than a JSON object (`snapshot`, `restore`).
//!
//! # Order of checks (ZooKeeper 3.9 `Commands.runCommand`)
//!
//! 1. An unknown name answers 200 with `"error": "Unknown command: <name>"`.
//! 2. A command that needs a serving server, while this one does not serve, answers 200
//!    with "This ZooKeeper instance is not currently serving requests".
//! 3. `snapshot` and `restore` need `ALL` on `/` for the ids the `Authorization` header
//!    yields: no header → 401 "Auth info is missing for the command"; a header that
//!    does not authenticate (bad shape, unknown scheme) → 401 "Not authenticated"; ids
//!    the root's ACL does not grant every bit of `ALL` → 403 "Not authorized".
//! 4. The command runs; its side effect (`srst`, `crst`, `stmk`) happens only now.
//!
//! # `snapshot` and `restore` in ferrokeeper
//!
//! `snapshot` writes a snapshot of the state shard 0 serves and streams it, with
//! ZooKeeper's `last_zxid` and `snapshot_size` headers, as
//! `application/octet-stream`. The bytes are a ZooKeeper 3.8 `snapshot.<zxid>` file
//! (`crate::tools::export`, the writer `ferrokeeper export` uses), so Java ZooKeeper
//! can start from a downloaded snapshot.
//!
//! `restore` (POST) takes such a file as the request body (ZooKeeper's, 3.5–3.9, plain;
//! or one `snapshot` streamed), decodes it with the importer
//! (`crate::import::stream`) on this executor and hands the state to the commit stage,
//! which makes it durable and swaps it in (`crate::commit::restore` says how, and how
//! that differs from ZooKeeper). It answers `{"last_zxid": <zxid>}` once clients are
//! served the restored tree. Refusals, in ZooKeeper's order after the auth check:
//! `admin.restore.enabled=false` → 503; the rate limit → 429; then ferrokeeper's own:
//! an ensemble member → 500 ([`commands::RESTORE_ON_ENSEMBLE`]), a body that does not
//! decode → 500 with the importer's message (file offset included). ZooKeeper leaves
//! `error` null on its 500s and logs the cause; ferrokeeper puts the cause in `error`.
//!
//! Both are rate limited as in ZooKeeper 3.9 (`RateLimiter`, one call per
//! `admin.rateLimiterIntervalInMS`, the first at once): `restore` per interval in
//! milliseconds, `snapshot` per interval read as microseconds, as Java's code builds it.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};

use super::Endpoint;
use crate::admin::commands::{self, AdminContext, Command, QuorumView, VoterView};
use crate::admin::json::Json;
use crate::admin::{ServerStats, SideEffect, StatsNeeds};
use crate::core::acl::{self, AuthIds};
use crate::core::state::DataState;
use crate::shard::admin::{AdminAnswer, AdminCall};
use crate::shard::shared::ServerShared;
use ferrokeeper_net::codes::perms;

/// A response body: a whole JSON or text reply, or a snapshot file read as it is sent.
pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// JSON replies, as Jetty sends ZooKeeper's.
const JSON: &str = "application/json";

/// Bytes of the snapshot file per body frame.
const SNAPSHOT_CHUNK_BYTES: usize = 64 << 10;

/// `ZooKeeperServer`'s words when it does not serve.
const NOT_SERVING: &str = crate::admin::NOT_SERVING;

/// The largest `restore` body taken: a bound, so that an upload cannot grow memory
/// without end. A larger tree is restored offline (`ferrokeeper import`).
pub const RESTORE_BODY_BYTES_MAX: usize = 4 << 30;

/// Answers the AdminServer's and the metrics provider's requests.
pub struct Handler {
    shared: Arc<ServerShared>,
    restore_limiter: RateLimiter,
    snapshot_limiter: RateLimiter,
}

/// ZooKeeper's `RateLimiter` at a rate of one: a call is allowed if none was since the
/// window opened; a call after the window's end opens a new window. The first call is
/// allowed. Cells, not atomics: the handler lives on the HTTP executor alone.
struct RateLimiter {
    interval: std::time::Duration,
    window_start: std::cell::Cell<std::time::Instant>,
    remaining: std::cell::Cell<u32>,
}

impl RateLimiter {
    fn new(interval: std::time::Duration) -> RateLimiter {
        RateLimiter {
            interval,
            window_start: std::cell::Cell::new(std::time::Instant::now()),
            remaining: std::cell::Cell::new(1),
        }
    }

    fn allow(&self) -> bool {
        let now = std::time::Instant::now();
        if now > self.window_start.get() + self.interval {
            self.remaining.set(1);
            self.window_start.set(now);
        }
        match self.remaining.get() {
            0 => false,
            n => {
                self.remaining.set(n - 1);
                true
            }
        }
    }
}

fn full(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(
        Full::new(body.into())
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *r.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(CONTENT_TYPE, v);
    }
    r
}

fn json(status: StatusCode, reply: &Json) -> Response<Body> {
    full(status, JSON, reply.pretty())
}

fn not_found() -> Response<Body> {
    full(StatusCode::NOT_FOUND, "text/plain", "Not Found\n")
}

/// The query's `key=value` pairs, percent-decoded (`traceMask`, `streaming`).
fn query_args(query: Option<&str>) -> Vec<(String, String)> {
    let Some(q) = query else { return Vec::new() };
    q.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// `%XX` and `+` decoding of a query part. Written here because it is eight lines and
/// the one use does not justify a URL crate.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push(high * 16 + low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Why the `Authorization` header does not admit a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuthRefusal {
    Missing,
    NotAuthenticated,
    NotAuthorized,
}

impl AuthRefusal {
    fn reply(self, name: &str) -> Response<Body> {
        let (status, text) = match self {
            AuthRefusal::Missing => (
                StatusCode::UNAUTHORIZED,
                "Auth info is missing for the command",
            ),
            AuthRefusal::NotAuthenticated => (StatusCode::UNAUTHORIZED, "Not authenticated"),
            AuthRefusal::NotAuthorized => (StatusCode::FORBIDDEN, "Not authorized"),
        };
        json(status, &commands::error_reply(name, text))
    }
}

/// Reads and drops what is left of a request body, up to the `restore` bound.
async fn discard(mut body: Incoming) {
    let mut left = RESTORE_BODY_BYTES_MAX;
    while let Some(Ok(frame)) = body.frame().await {
        let n = frame.data_ref().map_or(0, Bytes::len);
        if n >= left {
            return;
        }
        left -= n;
    }
}

/// ZooKeeper's `handleAuthentication` then `handleAuthorization` for `ALL` on `/`.
///
/// The header is `<scheme> <credential>` (or `<scheme>` alone, for `ip`, whose id is the
/// peer's address). Java splits on single spaces and drops trailing empty parts, so
/// more than two parts fail. Schemes: `digest` and `ip` (ferrokeeper's providers);
/// `x509` needs the HTTPS client certificate, and ferrokeeper's AdminServer speaks plain
/// HTTP only, so it fails like any unknown scheme.
fn authorize(
    header: Option<&str>,
    peer: Option<SocketAddr>,
    root: &DataState,
    super_digest: Option<&str>,
    skip_acl: bool,
) -> Result<(), AuthRefusal> {
    let header = header.ok_or(AuthRefusal::Missing)?;
    let mut parts: Vec<&str> = header.split(' ').collect();
    while parts.last() == Some(&"") {
        parts.pop();
    }
    if parts.is_empty() || parts.len() > 2 {
        return Err(AuthRefusal::NotAuthenticated);
    }
    let peer = peer.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    let ip = acl::ip_id(&peer);
    let credential = parts.get(1).map_or(&b""[..], |c| c.as_bytes());
    let found = acl::authenticate(parts[0], credential, &ip, super_digest)
        .map_err(|_| AuthRefusal::NotAuthenticated)?;
    if found.is_empty() {
        return Err(AuthRefusal::NotAuthenticated);
    }
    // Java checks the ids the header yields and no others: the peer's address counts
    // only when the scheme is `ip`.
    let mut ids = AuthIds::from_ip_id(if parts[0] == acl::IP {
        ip
    } else {
        String::new()
    });
    for id in found {
        ids.add(id);
    }
    let node_acl = root
        .tree
        .get("/")
        .map(|n| n.acl().clone())
        .ok_or(AuthRefusal::NotAuthorized)?;
    // Every bit of ALL on its own, as `handleAuthorization` checks them.
    for bit in 0..5 {
        let perm = 1 << bit;
        if perms::ALL & perm != 0 && !acl::check(&node_acl, perm, &ids, skip_acl) {
            return Err(AuthRefusal::NotAuthorized);
        }
    }
    Ok(())
}

impl Handler {
    /// A handler asking `shared`'s shard 0 for stats.
    pub fn new(shared: Arc<ServerShared>) -> Handler {
        let interval = shared.config.admin.rate_limiter_interval_ms;
        Handler {
            restore_limiter: RateLimiter::new(std::time::Duration::from_millis(interval)),
            // `new RateLimiter(1, rateLimiterInterval, TimeUnit.MICROSECONDS)` in
            // ZooKeeper 3.9's SnapshotCommand: the same number, as microseconds.
            snapshot_limiter: RateLimiter::new(std::time::Duration::from_micros(interval)),
            shared,
        }
    }

    /// Asks shard 0 for the stats `needs` names, applying `effect` after gathering.
    /// `None` if the shard is gone (the server is stopping).
    async fn ask(&self, needs: StatsNeeds, effect: Option<SideEffect>) -> Option<AdminAnswer> {
        let (reply, answer) = async_channel::bounded(1);
        self.shared
            .admin_calls
            .0
            .send(AdminCall {
                needs,
                effect,
                reply,
            })
            .await
            .ok()?;
        answer.recv().await.ok()
    }

    /// Answers one request on `endpoint`.
    pub async fn handle(
        &self,
        endpoint: Endpoint,
        peer: Option<SocketAddr>,
        req: Request<Incoming>,
    ) -> Response<Body> {
        match endpoint {
            Endpoint::Metrics => self.metrics(req.uri().path()).await,
            Endpoint::Admin => self.admin(peer, req).await,
        }
    }

    async fn metrics(&self, path: &str) -> Response<Body> {
        // PrometheusMetricsProvider maps its servlet to /metrics only.
        if path != "/metrics" {
            return not_found();
        }
        let needs = StatsNeeds {
            file_descriptors: true,
            ..StatsNeeds::default()
        };
        match self.ask(needs, None).await {
            Some(a) => full(
                StatusCode::OK,
                crate::admin::prometheus::CONTENT_TYPE,
                crate::admin::prometheus::render(&a.stats),
            ),
            None => full(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "stopping\n"),
        }
    }

    /// A command's answer, after the rest of the request body: a refused `restore` (or
    /// any command sent a body) must not close the connection under a client still
    /// sending, which then sees a broken pipe instead of the answer (CI caught the
    /// anonymous 401 of tests/restore.rs so). As Jetty does, the body is read and
    /// dropped, up to the `restore` bound.
    async fn admin(&self, peer: Option<SocketAddr>, req: Request<Incoming>) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let mut body = Some(body);
        let reply = self
            .admin_command(peer, Request::from_parts(parts, ()), &mut body)
            .await;
        if let Some(rest) = body {
            discard(rest).await;
        }
        reply
    }

    async fn admin_command(
        &self,
        peer: Option<SocketAddr>,
        req: Request<()>,
        body: &mut Option<Incoming>,
    ) -> Response<Body> {
        let base = self.shared.config.admin.command_url.trim_end_matches('/');
        let path = req.uri().path();
        if path == base || path == format!("{base}/") || (base.is_empty() && path == "/") {
            return full(
                StatusCode::OK,
                "text/html",
                commands::listing(&self.shared.config.admin.command_url),
            );
        }
        let Some(name) = path.strip_prefix(&format!("{base}/")) else {
            return not_found();
        };
        let name = percent_decode(name);
        let Some(cmd) = Command::from_name(&name) else {
            return json(StatusCode::OK, &commands::unknown(&name));
        };
        let args = query_args(req.uri().query());
        let Some(answer) = self.ask(cmd.needs(), None).await else {
            return json(StatusCode::OK, &commands::error_reply(&name, NOT_SERVING));
        };
        let s = &answer.stats;
        if cmd.server_required() && !s.serving {
            return json(StatusCode::OK, &commands::error_reply(&name, NOT_SERVING));
        }
        if cmd.needs_auth() {
            let header = req
                .headers()
                .get(AUTHORIZATION)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            if let Err(refusal) = authorize(
                header.as_deref(),
                peer,
                &answer.root,
                self.shared.super_digest.as_deref(),
                self.shared.skip_acl,
            ) {
                return refusal.reply(&name);
            }
        }
        match cmd {
            Command::Snapshot => return self.snapshot(&answer.root, &args),
            Command::Restore => return self.restore(req.method(), body).await,
            _ => {}
        }
        if let Some(effect) = cmd.effect(&args) {
            // Applied only now, after the checks; the reply shows the state before it,
            // as ZooKeeper's (which reads its stats before resetting them) does.
            let _ = self.ask(StatsNeeds::default(), Some(effect)).await;
        }
        let ctx = self.context(s);
        json(
            StatusCode::OK,
            &commands::respond(cmd, &name, s, &ctx, &args),
        )
    }

    /// `restore`: POST with a ZooKeeper snapshot as the body (module docs).
    /// `body` is taken only when the snapshot is read; refusals leave it to
    /// [`Handler::admin`] to drain.
    async fn restore(&self, method: &Method, body: &mut Option<Incoming>) -> Response<Body> {
        let primary = Command::Restore.primary_name();
        if method != Method::POST {
            return json(
                StatusCode::METHOD_NOT_ALLOWED,
                &commands::error_reply(primary, "restore is run by POST"),
            );
        }
        if !self.shared.config.admin.restore_enabled {
            tracing::warn!("restore command is disabled");
            return json(
                StatusCode::SERVICE_UNAVAILABLE,
                &commands::respond_empty(primary),
            );
        }
        if !self.restore_limiter.allow() {
            tracing::warn!("restore request was rate limited");
            return json(
                StatusCode::TOO_MANY_REQUESTS,
                &commands::respond_empty(primary),
            );
        }
        let failed = |error: String| {
            tracing::warn!(%error, "restore failed; the state is unchanged");
            json(
                StatusCode::INTERNAL_SERVER_ERROR,
                &commands::error_reply(primary, &error),
            )
        };
        if self.shared.ensemble.is_some() {
            return failed(commands::RESTORE_ON_ENSEMBLE.to_string());
        }
        let Some(incoming) = body.take() else {
            return failed("the request body was already read".to_string());
        };
        let body = match http_body_util::Limited::new(incoming, RESTORE_BODY_BYTES_MAX)
            .collect()
            .await
        {
            Ok(b) => b.to_bytes(),
            Err(e) => return failed(format!("reading the snapshot from the request failed: {e}")),
        };
        let opts = crate::import::ImportOptions {
            extended_types: self.shared.config.extended_types_enabled,
        };
        let decoded = crate::import::stream::state_from_snapshot_bytes(
            std::path::Path::new("restore request body"),
            &body,
            &opts,
        );
        drop(body);
        let snapshot = match decoded {
            Ok(s) => s,
            Err(e) => return failed(format!("the snapshot does not decode: {e}")),
        };
        if let crate::import::DigestCheck::Mismatch {
            zxid,
            expected,
            actual,
        } = snapshot.digest
        {
            // ZooKeeper only logs a digest mismatch of a snapshot it loads.
            tracing::warn!(
                zxid = format_args!("{zxid:#x}"),
                expected,
                actual,
                "restored tree differs from the snapshot's digest"
            );
        }
        tracing::info!(
            zxid = format_args!("{:#x}", snapshot.state.last_zxid),
            nodes = snapshot.nodes,
            sessions = snapshot.sessions,
            dead_session_ephemerals = snapshot.dead_session_ephemerals,
            "restore: snapshot decoded; handing it to the commit stage"
        );
        let (reply, answer) = async_channel::bounded(1);
        let call = crate::commit::restore::RestoreCall {
            state: snapshot.state,
            reply,
        };
        if self.shared.restores.0.send(call).await.is_err() {
            return failed(NOT_SERVING.to_string());
        }
        match answer.recv().await {
            Ok(Ok(zxid)) => json(StatusCode::OK, &commands::restored(zxid)),
            Ok(Err(e)) => failed(e),
            Err(_) => failed(NOT_SERVING.to_string()),
        }
    }

    /// `snapshot`: writes the served state as a snapshot and streams the file.
    fn snapshot(&self, root: &DataState, args: &[(String, String)]) -> Response<Body> {
        let primary = Command::Snapshot.primary_name();
        if !self.shared.config.admin.snapshot_enabled {
            return json(
                StatusCode::SERVICE_UNAVAILABLE,
                &commands::respond_empty(primary),
            );
        }
        if !self.snapshot_limiter.allow() {
            tracing::warn!("snapshot request was rate limited");
            return json(
                StatusCode::TOO_MANY_REQUESTS,
                &commands::respond_empty(primary),
            );
        }
        // Boolean.parseBoolean: only "true", any case, is true; absent means stream.
        let streaming = args
            .iter()
            .find(|(k, _)| k == "streaming")
            .is_none_or(|(_, v)| v.eq_ignore_ascii_case("true"));
        let dir = self
            .shared
            .config
            .data_dir
            .join("ferrokeeper")
            .join("admin-snapshot");
        let written = write_zookeeper_snapshot(&dir, root);
        let (path, bytes) = match written {
            Ok(file) => file,
            Err(e) => {
                tracing::warn!(error = %e, "snapshot admin command: writing the snapshot failed");
                return json(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &commands::respond_empty(primary),
                );
            }
        };
        let opened = std::fs::File::open(&path);
        // The open file keeps its bytes; the name is not kept, so these downloads never
        // pile up in dataDir.
        if let Err(e) = std::fs::remove_file(&path) {
            tracing::warn!(error = %e, file = %path.display(), "cannot remove the admin snapshot");
        }
        let zxid = format!("0x{:x}", root.last_zxid);
        let size = bytes.to_string();
        let mut response = match (streaming, opened) {
            (false, _) => json(StatusCode::OK, &commands::respond_empty(primary)),
            (true, Ok(f)) => {
                let mut r = Response::new(file_body(f));
                if let Ok(v) = HeaderValue::from_str("application/octet-stream") {
                    r.headers_mut().insert(CONTENT_TYPE, v);
                }
                r
            }
            (true, Err(e)) => {
                tracing::warn!(error = %e, "snapshot admin command: cannot open the snapshot");
                json(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &commands::respond_empty(primary),
                )
            }
        };
        for (k, v) in [("last_zxid", zxid), ("snapshot_size", size)] {
            if let Ok(v) = HeaderValue::from_str(&v) {
                response.headers_mut().insert(k, v);
            }
        }
        response
    }
}

/// Writes `state` as a ZooKeeper `snapshot.<zxid>` file (the format `restore` and Java's
/// own `snapshot` command use) under `dir`; returns its path and size.
fn write_zookeeper_snapshot(
    dir: &std::path::Path,
    state: &DataState,
) -> std::io::Result<(std::path::PathBuf, u64)> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(crate::tools::export::snapshot_file_name(state.last_zxid));
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
    crate::tools::export::write_zookeeper_snapshot(state, &mut out)?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    Ok((path, file.metadata()?.len()))
}

impl Handler {
    /// What the replies read beyond the stats.
    fn context(&self, s: &ServerStats) -> AdminContext {
        let config = &self.shared.config;
        // The file's settings, one `key=value` per line in file order (ZooKeeper returns
        // the file's text; comments and blank lines are not kept here).
        let initial_configuration = config
            .raw
            .iter()
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect();
        let last_snapshot =
            ferrokeeper_storage::snapshot::list(&crate::snapshot::snap_dir(&config.data_dir))
                .ok()
                .and_then(|files| files.into_iter().next_back())
                .map(|f| {
                    let secs = std::fs::metadata(&f.path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                        .map_or(-1, |d| d.as_secs() as i64);
                    (f.zxid, secs)
                });
        // There is no JVM: the system properties are the environment entries that are
        // Java properties (`java.*`, `os.*`, `user.*`), sorted as ZooKeeper sorts them.
        let mut system_properties: Vec<(String, String)> = s
            .environment
            .iter()
            .filter(|(k, _)| k != "zookeeper.version" && k != "host.name")
            .cloned()
            .collect();
        system_properties.sort();
        AdminContext {
            initial_configuration,
            last_snapshot,
            quorum: self.quorum_view(),
            system_properties,
        }
    }

    fn quorum_view(&self) -> Option<QuorumView> {
        let ensemble = self.shared.config.ensemble.as_ref()?;
        let status = self.shared.ensemble.as_ref()?.read();
        use crate::commit::role::roles;
        use crate::config::ensemble::PeerRole;
        // `QuorumServer.delimitedHostString`: an IPv6 literal in brackets.
        let hp = |host: &str, port: u16| {
            if host.contains(':') && !host.starts_with('[') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            }
        };
        let client = |spec: &crate::config::ensemble::ServerSpec| {
            spec.client
                .as_ref()
                .map_or(String::new(), |c| hp(&c.host, c.port))
        };
        let me = ensemble.me();
        // ZooKeeper gives its own server line the `clientPortAddress`/`clientPort` it
        // listens on when the line names no client port (QuorumPeerConfig), so the
        // member's own entry has a client address and the others' do not.
        let own_client = || {
            let c = client(me);
            if !c.is_empty() {
                return c;
            }
            let host = self
                .shared
                .config
                .client_port_address
                .map_or_else(|| "0.0.0.0".to_string(), |a| a.to_string());
            hp(&host, self.shared.config.client_port)
        };
        let leader = (status.leader != 0)
            .then(|| ensemble.servers.get(&status.leader))
            .flatten();
        let voting_view = ensemble
            .servers
            .values()
            .filter(|s| s.role == PeerRole::Participant)
            .map(|s| {
                (
                    s.id,
                    VoterView {
                        server_addresses: vec![hp(&s.host, s.quorum_port)],
                        election_addresses: vec![hp(&s.host, s.election_port)],
                        client_address: if s.id == me.id {
                            own_client()
                        } else {
                            client(s)
                        },
                        learner_type: "participant".to_string(),
                    },
                )
            })
            .collect();
        Some(QuorumView {
            my_id: ensemble.my_id,
            is_leader: status.role == roles::LEADER,
            leader_id: leader.map_or(-1, |l| l.id as i64),
            leader_ip: leader.map_or(String::new(), |l| l.host.clone()),
            voting: me.role == PeerRole::Participant,
            addresses: (
                hp(&me.host, me.quorum_port),
                hp(&me.host, me.election_port),
                own_client(),
            ),
            voting_view,
        })
    }
}

/// A body that reads `file` as it is sent, in [`SNAPSHOT_CHUNK_BYTES`] frames. The reads
/// are plain blocking reads: they run on the HTTP executor, which serves no client.
fn file_body(file: std::fs::File) -> Body {
    let chunks = futures_lite::stream::unfold(Some(file), |file| async move {
        use std::io::Read as _;
        let mut file = file?;
        let mut buf = vec![0u8; SNAPSHOT_CHUNK_BYTES];
        match file.read(&mut buf) {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Frame::data(Bytes::from(buf))), Some(file)))
            }
            Err(e) => Some((Err(e), None)),
        }
    });
    StreamBody::new(chunks).boxed_unsync()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_arguments_decode() {
        assert_eq!(
            query_args(Some("traceMask=42&streaming=false&x=a%2Fb+c")),
            vec![
                ("traceMask".to_string(), "42".to_string()),
                ("streaming".to_string(), "false".to_string()),
                ("x".to_string(), "a/b c".to_string()),
            ]
        );
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert!(query_args(None).is_empty());
    }
}
