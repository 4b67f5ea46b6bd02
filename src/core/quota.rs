//! Quotas, with ZooKeeper 3.7+ semantics (`Quotas`, `StatsTrack`, the quota parts of
//! `DataTree` and `ZooKeeperServer.checkQuota`).
//!
//! A quota on `/p` is two ordinary znodes that clients (`zkCli.sh setquota`) create:
//! `/zookeeper/quota/p/zookeeper_limits` (the limits) and
//! `/zookeeper/quota/p/zookeeper_stats` (the usage: node count, data bytes). The server
//! does three things with them, all here and all deterministic, so every replica and
//! every replay does the same:
//!
//! - **Registration** ([`on_create`], [`on_delete`]): creating a node named
//!   `zookeeper_limits` under `/zookeeper/quota` registers its quota path in
//!   [`DataState::quota_paths`] (ZooKeeper's `PathTrie`); deleting one unregisters it.
//!   Creating `zookeeper_stats` recomputes the usage of the quota's subtree into it.
//! - **Usage in place**: a create, delete or setData under a quota path changes the
//!   count and bytes in the stats node of the deepest quota above it. The stats node's
//!   data changes *in place*: its version, mzxid, mtime stay, no watch fires, as in
//!   ZooKeeper (its `DataTree.updateQuotaStat` writes `statNode.data` directly). The
//!   tree digest does not see it either: nodes under `/zookeeper/` count for nothing.
//! - **Load** ([`setup`]): after a snapshot is loaded the index is rebuilt and every
//!   quota's usage recomputed from the tree, as `DataTree.deserialize` → `setupQuota`
//!   does; the log tail is then replayed through the same hooks.
//!
//! **Enforcement** ([`check`], from prep): with `zookeeper.enforceQuota`, a create or
//! setData that would take a quota over its *hard* limit fails with QuotaExceeded
//! (−125); over a soft limit it only logs a warning. As in ZooKeeper, the limits and
//! usage are read from the state *before* the request (ZooKeeper reads its applied
//! tree, not its pending changes), so the ops of one multi are each checked against
//! the usage before the multi, and a multi can go past a limit that each op alone fits.
//!
//! ZooKeeper's oddities that are kept on purpose, because replicas and clients see them:
//! only the deepest quota above a node is updated (nested quotas, which `setquota`
//! refuses but raw creates allow, leave the outer stats behind); a stats node whose
//! limits node is gone stops moving; a client may write the stats node, and the
//! in-place updates go on from what it wrote.
//!
//! Where ZooKeeper throws instead (a stats or limits node whose text does not parse, a
//! `zookeeper_limits` directly under `/zookeeper/quota`, a `zookeeper_limits` under a
//! `/zookeeper/…` parent shorter than `/zookeeper/quota`), ferrokeeper logs and leaves
//! the quota alone: unparseable stats stay as written; an unparseable limits node under
//! enforcement fails the write with MarshallingError, as ZooKeeper's prep answers any
//! unexpected exception.

use std::collections::BTreeMap;
use std::sync::Arc;

use ferrokeeper_net::codes::ErrorCode;

use crate::core::path::{self, QUOTA};
use crate::core::state::DataState;

/// Name of the limits node (`Quotas.limitNode`).
pub const LIMIT_NODE: &str = "zookeeper_limits";
/// Name of the stats node (`Quotas.statNode`).
pub const STAT_NODE: &str = "zookeeper_stats";

/// `StatsTrack`'s keys.
const COUNT: &str = "count";
const BYTES: &str = "bytes";
const COUNT_HARD: &str = "countHardLimit";
const BYTES_HARD: &str = "byteHardLimit";

/// The limits node of the quota on `quota_path` (`Quotas.limitPath`).
pub fn limit_path(quota_path: &str) -> String {
    format!("{QUOTA}{quota_path}/{LIMIT_NODE}")
}

/// The stats node of the quota on `quota_path` (`Quotas.statPath`).
pub fn stat_path(quota_path: &str) -> String {
    format!("{QUOTA}{quota_path}/{STAT_NODE}")
}

/// Why a quota node's text does not parse as `StatsTrack` reads it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatsError {
    /// A pair without `=` and a value (`StatsTrack` indexes `kv[1]`).
    #[error("pair {0:?} has no value")]
    NoValue(String),
    /// A value that is not a decimal `long`.
    #[error("value of {key:?} is not a number: {value:?}")]
    NotNumber {
        /// The key.
        key: String,
        /// The text.
        value: String,
    },
}

/// ZooKeeper's `StatsTrack`: `key=value` pairs of `long`s, a missing key reading −1.
///
/// Written as `count=N,bytes=N`, then, only when other keys exist, `=` and `;key=value`
/// for each other key in sorted order (the trailing `=` keeps ZooKeeper 3.4's parser
/// from reading the new keys), e.g. `count=-1,bytes=100=;byteHardLimit=-1;countHardLimit=2`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsTrack {
    // Sorted by key: Java sorts the extra keys with `Collections.sort` (UTF-16 order,
    // which differs from this byte order only for characters beyond U+FFFF).
    values: BTreeMap<String, i64>,
}

impl StatsTrack {
    /// Parses node data as `new StatsTrack(byte[])` does: UTF-8 with replacement, pairs
    /// split at runs of `,` and `;`, each pair split at `=`; an empty value reads −1; a
    /// key given twice keeps its last value.
    pub fn parse(data: &[u8]) -> Result<StatsTrack, StatsError> {
        let text = String::from_utf8_lossy(data);
        let mut values = BTreeMap::new();
        if text.is_empty() {
            return Ok(StatsTrack { values });
        }
        for pair in java_split(&text, |c| c == ',' || c == ';', true) {
            let kv = java_split(pair, |c| c == '=', false);
            let (Some(key), Some(value)) = (kv.first(), kv.get(1)) else {
                return Err(StatsError::NoValue(pair.to_string()));
            };
            let n = if value.is_empty() {
                -1
            } else {
                java_parse_long(value).ok_or_else(|| StatsError::NotNumber {
                    key: key.to_string(),
                    value: value.to_string(),
                })?
            };
            values.insert(key.to_string(), n);
        }
        Ok(StatsTrack { values })
    }

    fn get(&self, key: &str) -> i64 {
        self.values.get(key).copied().unwrap_or(-1)
    }

    /// `count` (soft node-count limit, or usage in a stats node).
    pub fn count(&self) -> i64 {
        self.get(COUNT)
    }
    /// `bytes` (soft byte limit, or usage in a stats node).
    pub fn bytes(&self) -> i64 {
        self.get(BYTES)
    }
    /// `countHardLimit`.
    pub fn count_hard_limit(&self) -> i64 {
        self.get(COUNT_HARD)
    }
    /// `byteHardLimit`.
    pub fn byte_hard_limit(&self) -> i64 {
        self.get(BYTES_HARD)
    }
    /// Sets `count`.
    pub fn set_count(&mut self, v: i64) {
        self.values.insert(COUNT.into(), v);
    }
    /// Sets `bytes`.
    pub fn set_bytes(&mut self, v: i64) {
        self.values.insert(BYTES.into(), v);
    }

    /// The text ZooKeeper writes (`StatsTrack.toString`).
    pub fn to_text(&self) -> String {
        let mut out = format!("count={},bytes={}", self.count(), self.bytes());
        let mut extra = self
            .values
            .iter()
            .filter(|(k, _)| *k != COUNT && *k != BYTES)
            .peekable();
        if extra.peek().is_some() {
            out.push('=');
            for (k, v) in extra {
                out.push_str(&format!(";{k}={v}"));
            }
        }
        out
    }
}

/// Java's `String.split(regex)` for a character class, with `+` (`runs`: a run of
/// separators is one) or without: a leading empty piece is kept (but not for an empty
/// text's match at 0), trailing empty pieces are dropped.
fn java_split(text: &str, sep: impl Fn(char) -> bool, runs: bool) -> Vec<&str> {
    let mut pieces: Vec<&str> = Vec::new();
    let mut start = 0;
    let mut in_sep = false;
    for (i, c) in text.char_indices() {
        if sep(c) {
            if !(runs && in_sep) {
                pieces.push(&text[start..i]);
            }
            in_sep = true;
            start = i + c.len_utf8();
        } else {
            in_sep = false;
        }
    }
    pieces.push(&text[start..]);
    while pieces.last().is_some_and(|p| p.is_empty()) {
        pieces.pop();
    }
    pieces
}

/// `Long.parseLong`: optional sign, ASCII digits, within `long`.
fn java_parse_long(text: &str) -> Option<i64> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A path's components as ZooKeeper's `PathTrie` sees them: split at `/`, pieces that
/// are empty after Java's `trim()` (which strips characters up to U+0020) dropped.
fn trie_components(p: &str) -> impl Iterator<Item = &str> {
    p.split('/')
        .filter(|c| !c.trim_matches(|ch: char| ch <= ' ').is_empty())
}

/// The quota path a quota node's parent names, normalised as the trie keeps it
/// (`"/" + join("/", components)`), or `None` where the trie would hold nothing (no
/// component left; ZooKeeper throws or ignores those).
fn normalized(p: &str) -> Option<Arc<str>> {
    let mut out = String::with_capacity(p.len());
    for c in trie_components(p) {
        out.push('/');
        out.push_str(c);
    }
    (!out.is_empty()).then(|| Arc::from(out))
}

/// `DataTree.getMaxPrefixWithQuota`: the deepest registered quota path that is `p` or
/// an ancestor of it, component by component. `None` when no quota covers `p` (and
/// always when no quota exists, which costs nothing).
pub fn max_prefix(state: &DataState, p: &str) -> Option<Arc<str>> {
    if state.quota_paths.is_empty() {
        return None;
    }
    let mut prefix = String::with_capacity(p.len());
    let mut best = None;
    for c in trie_components(p) {
        prefix.push('/');
        prefix.push_str(c);
        if let Some(found) = state.quota_paths.get(prefix.as_str()) {
            best = Some(found.clone());
        }
    }
    best
}

/// The hooks of `DataTree.createNode` after the node at `p` (with `data_len` bytes) was
/// added by txn `zxid`.
pub fn on_create(state: &mut DataState, p: &str, data_len: usize, zxid: i64) {
    let parent = path::parent(p);
    let name = path::name(p);
    // ZooKeeper tests `startsWith("/zookeeper/quota")` (so `/zookeeper/quotax/…` too).
    if let Some(rest) = parent.strip_prefix(QUOTA) {
        if name == LIMIT_NODE {
            match normalized(rest) {
                Some(q) => {
                    state.quota_paths.insert(q);
                }
                None => tracing::warn!(
                    path = p,
                    "a quota limits node names no path below /zookeeper/quota; ignored"
                ),
            }
        }
        if name == STAT_NODE {
            recompute(state, rest, zxid);
        }
    }
    if let Some(q) = max_prefix(state, p) {
        add_usage(state, &q, data_len as i64, 1, zxid);
    }
}

/// The hooks of `DataTree.deleteNode` after the node at `p` (which held `data_len`
/// bytes) was removed by txn `zxid`.
pub fn on_delete(state: &mut DataState, p: &str, data_len: usize, zxid: i64) {
    let parent = path::parent(p);
    // ZooKeeper tests the parent against `/zookeeper` here and then cuts
    // `/zookeeper/quota`'s length off it (throwing for a shorter parent).
    if parent.starts_with(path::ZOOKEEPER) && path::name(p) == LIMIT_NODE {
        if let Some(q) = parent.get(QUOTA.len()..).and_then(normalized) {
            state.quota_paths.remove(&q);
        }
    }
    if let Some(q) = max_prefix(state, p) {
        add_usage(state, &q, -(data_len as i64), -1, zxid);
    }
}

/// The hook of `DataTree.setData`: the node at `p` went from `old_len` to `new_len`
/// bytes in txn `zxid`.
pub fn on_set_data(state: &mut DataState, p: &str, old_len: usize, new_len: usize, zxid: i64) {
    if let Some(q) = max_prefix(state, p) {
        add_usage(state, &q, new_len as i64 - old_len as i64, 0, zxid);
    }
}

/// `DataTree.updateQuotaStat`: adds to the usage in the stats node of `quota`, in place.
fn add_usage(state: &mut DataState, quota: &str, bytes: i64, count: i64, zxid: i64) {
    let sp = stat_path(quota);
    let Some(node) = state.tree.get(&sp) else {
        tracing::warn!(path = %sp, "quota stats node missing; usage not updated");
        return;
    };
    let mut stats = match StatsTrack::parse(node.data().unwrap_or_default()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(path = %sp, error = %e, "quota stats node does not parse; usage not updated");
            return;
        }
    };
    stats.set_count(stats.count().wrapping_add(count));
    stats.set_bytes(stats.bytes().wrapping_add(bytes));
    write_in_place(state, &sp, stats.to_text(), zxid);
}

/// Replaces the data of the node at `p` without touching its stat (ZooKeeper assigns
/// `node.data`). `zxid` is only the tree's bookkeeping of which layer wrote the copy.
fn write_in_place(state: &mut DataState, p: &str, text: String, zxid: i64) {
    let data: Arc<[u8]> = Arc::from(text.into_bytes());
    state.update_node(p, zxid, |n| n.data = Some(data));
}

/// `DataTree.updateQuotaForPath`: the stats node of the quota on `quota` (as written
/// after `/zookeeper/quota`, not normalised, as ZooKeeper uses it) gets the node count
/// and data bytes of the subtree at `quota`, itself included (0 and 0 when it does not
/// exist). Extra keys in the stats node are dropped, as ZooKeeper writes a fresh one.
fn recompute(state: &mut DataState, quota: &str, zxid: i64) {
    let (mut count, mut bytes) = (0i64, 0i64);
    let mut stack = vec![quota.to_string()];
    while let Some(p) = stack.pop() {
        if let Some(n) = state.tree.get(&p) {
            count += 1;
            bytes += n.data_len() as i64;
            for c in n.children() {
                stack.push(format!("{p}/{c}"));
            }
        }
    }
    let sp = stat_path(quota);
    if !state.tree.contains(&sp) {
        tracing::warn!(path = %sp, "quota stats node missing; usage not recomputed");
        return;
    }
    let mut stats = StatsTrack::default();
    stats.set_bytes(bytes);
    stats.set_count(count);
    write_in_place(state, &sp, stats.to_text(), zxid);
}

/// `DataTree.setupQuota`, run when a state is loaded: rebuilds [`DataState::quota_paths`]
/// from the leaf `zookeeper_limits` nodes under `/zookeeper/quota` and recomputes each
/// quota's usage. Costs a walk of `/zookeeper/quota` plus one of each quota's subtree.
pub fn setup(state: &mut DataState) {
    state.quota_paths = Default::default();
    let zxid = state.last_zxid;
    let mut limits = Vec::new();
    let mut stack = vec![QUOTA.to_string()];
    while let Some(p) = stack.pop() {
        let Some(n) = state.tree.get(&p) else {
            continue;
        };
        if n.has_children() {
            for c in n.children() {
                stack.push(format!("{p}/{c}"));
            }
        } else if let Some(at) = p.find(&format!("/{LIMIT_NODE}")) {
            // ZooKeeper cuts at the first "/zookeeper_limits" of a leaf path that ends
            // with one.
            if p.ends_with(&format!("/{LIMIT_NODE}")) {
                limits.push(p[QUOTA.len()..at].to_string());
            }
        }
    }
    limits.sort();
    for quota in limits {
        recompute(state, &quota, zxid);
        if let Some(q) = normalized(&quota) {
            state.quota_paths.insert(q);
        }
    }
}

/// Which write a quota check is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckOp {
    /// A create: one node more, its data's bytes more.
    Create,
    /// A setData: the data's length changes from `old_len`.
    SetData {
        /// Length of the data being replaced (ZooKeeper takes it from its pending
        /// change records, so inside a multi it is the earlier op's data).
        old_len: usize,
    },
}

/// ZooKeeper's counter set `quota_exceeded_error_per_namespace`: how many writes each
/// top-level namespace had refused by a hard quota limit since the server started.
///
/// ZooKeeper 3.8 and 3.9 (`ZooKeeperServer.checkQuota` → `updateQuotaExceededMetrics`)
/// bump it only where they throw QuotaExceeded: a soft limit passed logs a warning and
/// counts nothing. The key is `PathUtils.getTopNamespace` of the written path (`q` for
/// `/q/a/b`), not the quota's path. Only the server that runs prep counts (an
/// ensemble's leader, as ZooKeeper's PrepRequestProcessor runs on its leader), and
/// nothing of it is replicated or persisted: it is a statistic, shared between the
/// commit stage (which bumps) and the shards (which print it), behind a mutex that is
/// taken only on a refused write and on `mntr`/`/metrics`.
#[derive(Debug, Default)]
pub struct ExceededCounts {
    by_namespace: std::sync::Mutex<BTreeMap<String, u64>>,
}

impl ExceededCounts {
    /// Counts one write to `p` refused by a hard limit.
    pub fn bump(&self, p: &str) {
        // `getTopNamespace`: `path.split("/")[1]`, none for `/` (no such part).
        let Some(namespace) = p.split('/').nth(1).filter(|n| !n.is_empty()) else {
            return;
        };
        let mut map = self
            .by_namespace
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *map.entry(namespace.to_string()).or_insert(0) += 1;
    }

    /// The counts by namespace (only namespaces that had a refusal, as ZooKeeper's
    /// `SimpleCounterSet` holds only keys it was given).
    pub fn read(&self) -> BTreeMap<String, u64> {
        self.by_namespace
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// `ZooKeeperServer.checkQuota`, when `zookeeper.enforceQuota` is on: whether a write to
/// `p` of `new_len` bytes fits the quota above it in `before` (the state before the
/// request). A hard limit exceeded fails with QuotaExceeded and counts in `exceeded`;
/// a soft one logs a warning.
pub fn check(
    before: &DataState,
    p: &str,
    new_len: usize,
    op: CheckOp,
    exceeded: &ExceededCounts,
) -> Result<(), ErrorCode> {
    let Some(quota) = max_prefix(before, p) else {
        return Ok(());
    };
    let (bytes_diff, count_diff) = match op {
        CheckOp::Create => (new_len as i64, 1),
        CheckOp::SetData { old_len } => (new_len as i64 - old_len as i64, 0),
    };
    let lp = limit_path(&quota);
    let Some(limit_node) = before.tree.get(&lp) else {
        tracing::error!(path = %lp, "quota limits node missing");
        return Ok(());
    };
    let limits = parse_or_marshalling(&lp, limit_node.data())?;
    let check_count = count_diff != 0 && (limits.count() > -1 || limits.count_hard_limit() > -1);
    let check_bytes = bytes_diff != 0 && (limits.bytes() > -1 || limits.byte_hard_limit() > -1);
    if !check_count && !check_bytes {
        return Ok(());
    }
    let sp = stat_path(&quota);
    let Some(stat_node) = before.tree.get(&sp) else {
        tracing::error!(path = %sp, "quota stats node missing");
        return Ok(());
    };
    let usage = parse_or_marshalling(&sp, stat_node.data())?;
    // A hard limit, when set, is the one checked; else the soft one (which only warns).
    let check = |kind, name, hard_limit: i64, soft_limit, used: i64, diff| {
        let hard = hard_limit > -1;
        let limit = if hard { hard_limit } else { soft_limit };
        let verdict = over_limit(&quota, kind, name, used.wrapping_add(diff), limit, hard);
        if verdict.is_err() {
            exceeded.bump(p);
        }
        verdict
    };
    if check_count {
        check(
            "count",
            "Count",
            limits.count_hard_limit(),
            limits.count(),
            usage.count(),
            count_diff,
        )?;
    }
    if check_bytes {
        check(
            "bytes",
            "Byte",
            limits.byte_hard_limit(),
            limits.bytes(),
            usage.bytes(),
            bytes_diff,
        )?;
    }
    Ok(())
}

fn parse_or_marshalling(p: &str, data: Option<&[u8]>) -> Result<StatsTrack, ErrorCode> {
    StatsTrack::parse(data.unwrap_or_default()).map_err(|e| {
        tracing::error!(path = p, error = %e, "quota node does not parse; write refused");
        ErrorCode::MarshallingError
    })
}

/// ZooKeeper's message for a limit passed: a warning for a soft limit (ZooKeeper's is
/// rate-limited by message; ferrokeeper logs each), QuotaExceeded for a hard one.
fn over_limit(
    quota: &str,
    what: &str,
    kind: &str,
    new: i64,
    limit: i64,
    hard: bool,
) -> Result<(), ErrorCode> {
    if new <= limit {
        return Ok(());
    }
    let level = if hard { "hard" } else { "soft" };
    tracing::warn!("Quota exceeded: {quota} [current {what}={new}, {level}{kind}Limit={limit}]");
    if hard {
        Err(ErrorCode::QuotaExceeded)
    } else {
        Ok(())
    }
}

/// `PathUtils.getTopNamespace`: the second piece of `p` split at `/` (`None` for `/`).
pub fn top_namespace(p: &str) -> Option<&str> {
    let parts = java_split(p, |c| c == '/', false);
    (parts.len() > 1).then(|| parts[1])
}

/// What `QuotaMetricsUtils` reports per namespace, summed over the quotas in it: limits
/// (hard if set, else soft) from each leaf `zookeeper_limits`, usage from each leaf
/// `zookeeper_stats` under `/zookeeper/quota`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamespaceQuota {
    /// `quota_count_limit_per_namespace`.
    pub count_limit: i64,
    /// `quota_bytes_limit_per_namespace`.
    pub bytes_limit: i64,
    /// `quota_count_usage_per_namespace`.
    pub count_usage: i64,
    /// `quota_bytes_usage_per_namespace`.
    pub bytes_usage: i64,
    /// Whether a limits node was seen (the limit gauges hold this namespace).
    pub has_limits: bool,
    /// Whether a stats node was seen (the usage gauges hold this namespace).
    pub has_stats: bool,
}

/// The quota gauges of `state` by namespace (`QuotaMetricsUtils.getQuotaLimitOrUsage`):
/// a walk of `/zookeeper/quota`, reading its leaf limits and stats nodes. Nodes with
/// null data or text that does not parse are skipped (ZooKeeper skips null data and
/// would throw on bad text).
pub fn namespace_metrics(state: &DataState) -> BTreeMap<String, NamespaceQuota> {
    let mut out: BTreeMap<String, NamespaceQuota> = BTreeMap::new();
    let mut stack = vec![QUOTA.to_string()];
    while let Some(p) = stack.pop() {
        let Some(n) = state.tree.get(&p) else {
            continue;
        };
        if n.has_children() {
            for c in n.children() {
                stack.push(format!("{p}/{c}"));
            }
            continue;
        }
        let is_limits = p.ends_with(&format!("/{LIMIT_NODE}"));
        let is_stats = p.ends_with(&format!("/{STAT_NODE}"));
        if !is_limits && !is_stats {
            continue;
        }
        let Some(ns) = top_namespace(&p[QUOTA.len()..]) else {
            continue;
        };
        let Some(Ok(track)) = n.data().map(StatsTrack::parse) else {
            continue;
        };
        let e = out.entry(ns.to_string()).or_default();
        let pick = |hard: i64, soft: i64| if hard > -1 { hard } else { soft };
        if is_limits {
            e.has_limits = true;
            e.count_limit += pick(track.count_hard_limit(), track.count());
            e.bytes_limit += pick(track.byte_hard_limit(), track.bytes());
        } else {
            e.has_stats = true;
            e.count_usage += track.count();
            e.bytes_usage += track.bytes();
        }
    }
    out
}

#[cfg(test)]
mod tests;
