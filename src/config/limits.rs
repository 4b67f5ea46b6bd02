//! Every bound the server enforces, in one validated struct, named with the unit last.
//!
//! Each field says which setting it comes from and where it is enforced. A limit that is
//! parsed is enforced: there is no setting here that the server reads and then ignores.

use super::ConfigError;

/// `jute.maxbuffer`: the largest packet payload, in bytes.
pub const DEFAULT_JUTE_MAX_BUFFER_BYTES: u32 = 0xfffff;
/// `maxClientCnxns`: connections allowed from one IP address; 0 means no limit.
pub const DEFAULT_MAX_CLIENT_CNXNS: u32 = 60;
/// `globalOutstandingLimit`: requests in flight before the server stops reading sockets.
pub const DEFAULT_GLOBAL_OUTSTANDING_LIMIT: u32 = 1000;
/// `ferrokeeper.sessionQueuedRequestsMax`: requests one connection may have queued
/// (writes waiting for the commit stage and the reads ordered behind them).
pub const DEFAULT_SESSION_QUEUED_REQUESTS_MAX: u32 = 1000;
/// `ferrokeeper.commitQueueDepth`: slots in each shard-to-commit-stage queue.
pub const DEFAULT_COMMIT_QUEUE_DEPTH: usize = 4096;
/// `ferrokeeper.commitBatchMax`: requests the commit stage puts in one log batch at most.
pub const DEFAULT_COMMIT_BATCH_MAX: usize = 1024;

/// The server's bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// `jute.maxbuffer`: a request frame longer than this closes the connection
    /// (`shard::conn`, `check_frame`). Invariant: > 0.
    pub jute_max_buffer_bytes: u32,
    /// `maxClientCnxns`: connections open at once from one IP address; 0 = unlimited.
    /// Enforced at accept (`ServerShared::admit`).
    pub client_cnxns_per_ip_max: u32,
    /// `maxCnxns` (`zookeeper.maxCnxns`): connections open at once across the server,
    /// four-letter-word connections included; 0 = unlimited. Enforced at accept, before
    /// the per-address limit, as ZooKeeper's `ServerCnxnFactory` does.
    pub cnxns_max: u32,
    /// `globalOutstandingLimit`: writes queued to the commit stage across the server.
    /// At or above it, a connection with a write of its own in flight stops reading its
    /// socket until that write is answered (ZooKeeper's `shouldThrottle`); no request is
    /// refused. Invariant: > 0.
    pub global_outstanding_requests_max: u32,
    /// `ferrokeeper.sessionQueuedRequestsMax`: requests one connection may have waiting
    /// (its writes in flight and the reads ordered behind them); at the bound its socket
    /// is not read until one is answered. ZooKeeper has no such bound: one client could
    /// queue without limit there. Invariant: > 0.
    pub session_queued_requests_max: u32,
    /// `minSessionTimeout`: the smallest session timeout granted (default 2 ticks).
    /// Invariant: `session_timeout_ms_min <= session_timeout_ms_max`.
    pub session_timeout_ms_min: u32,
    /// `maxSessionTimeout`: the largest session timeout granted (default 20 ticks).
    pub session_timeout_ms_max: u32,
    /// `ferrokeeper.commitQueueDepth`: capacity of each shard's queue to the commit stage
    /// (a full queue stops the sending connection's reader). Invariant: > 0.
    pub commit_queue_depth_requests: usize,
    /// `ferrokeeper.commitBatchMax`: requests per group-commit batch at most.
    /// Invariant: > 0.
    pub commit_batch_requests_max: usize,
    /// `nio.sessionlessCnxnTimeout` (`zookeeper.nio.sessionlessCnxnTimeout`, default
    /// 10000): a connection that has not completed a ConnectRequest and has sent nothing
    /// for this long is closed and counted as `sessionless_connections_expired`, as
    /// ZooKeeper's `NIOServerCnxnFactory` expires it. Invariant: > 0.
    pub sessionless_cnxn_timeout_ms: u32,
}

/// `NIOServerCnxnFactory`'s default sessionless connection timeout.
pub const DEFAULT_SESSIONLESS_CNXN_TIMEOUT_MS: u32 = 10_000;

impl Limits {
    /// ZooKeeper's defaults for a `tickTime` of `tick_time_ms`.
    pub fn defaults(tick_time_ms: u32) -> Limits {
        Limits {
            jute_max_buffer_bytes: DEFAULT_JUTE_MAX_BUFFER_BYTES,
            client_cnxns_per_ip_max: DEFAULT_MAX_CLIENT_CNXNS,
            cnxns_max: 0,
            global_outstanding_requests_max: DEFAULT_GLOBAL_OUTSTANDING_LIMIT,
            session_queued_requests_max: DEFAULT_SESSION_QUEUED_REQUESTS_MAX,
            session_timeout_ms_min: tick_time_ms.saturating_mul(2),
            session_timeout_ms_max: tick_time_ms.saturating_mul(20),
            commit_queue_depth_requests: DEFAULT_COMMIT_QUEUE_DEPTH,
            commit_batch_requests_max: DEFAULT_COMMIT_BATCH_MAX,
            sessionless_cnxn_timeout_ms: DEFAULT_SESSIONLESS_CNXN_TIMEOUT_MS,
        }
    }

    /// Checks the invariants the fields state. The parser only produces valid limits;
    /// this guards limits built by hand (tests, embedders) and the combinations no single
    /// key decides.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.session_timeout_ms_min > self.session_timeout_ms_max {
            return Err(ConfigError::SessionTimeoutRange {
                min_ms: self.session_timeout_ms_min,
                max_ms: self.session_timeout_ms_max,
            });
        }
        for (name, value) in [
            ("jute.maxbuffer", self.jute_max_buffer_bytes as usize),
            (
                "globalOutstandingLimit",
                self.global_outstanding_requests_max as usize,
            ),
            (
                "ferrokeeper.sessionQueuedRequestsMax",
                self.session_queued_requests_max as usize,
            ),
            (
                "ferrokeeper.commitQueueDepth",
                self.commit_queue_depth_requests,
            ),
            ("ferrokeeper.commitBatchMax", self.commit_batch_requests_max),
        ] {
            if value == 0 {
                return Err(ConfigError::ZeroLimit { key: name });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_follow_the_tick() {
        let l = Limits::defaults(2000);
        assert_eq!(l.validate().ok(), Some(()));
        assert_eq!(
            (l.session_timeout_ms_min, l.session_timeout_ms_max),
            (4000, 40000)
        );
        assert_eq!(l.jute_max_buffer_bytes, 0xfffff);
        assert_eq!(l.global_outstanding_requests_max, 1000);
    }

    #[test]
    fn invalid_limits_are_refused() {
        let mut l = Limits::defaults(2000);
        l.session_timeout_ms_min = 50_000;
        assert!(matches!(
            l.validate(),
            Err(ConfigError::SessionTimeoutRange { .. })
        ));
        let mut l = Limits::defaults(2000);
        l.session_queued_requests_max = 0;
        let err = l.validate().expect_err("zero");
        assert!(
            err.to_string().contains("sessionQueuedRequestsMax"),
            "{err}"
        );
    }
}
