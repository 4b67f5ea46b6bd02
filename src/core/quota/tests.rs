use super::*;

use crate::core::apply::apply;
use crate::core::sequencer::open_acl_unsafe;
use crate::core::txn::{Txn, TxnOp};

fn track(text: &str) -> StatsTrack {
    StatsTrack::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

/// `StatsTrack.toString` and its parser: the 3.7 form keeps `count` and `bytes` first,
/// then `=` and the other keys sorted, each after `;` (the text Debian's ZooKeeper 3.8
/// wrote after `setquota -N 2 /q` and `setquota -b 100 /q`).
#[test]
fn stats_track_round_trips_zookeeper_text() {
    let t = "count=-1,bytes=100=;byteHardLimit=-1;countHardLimit=2";
    let s = track(t);
    assert_eq!(s.count(), -1);
    assert_eq!(s.bytes(), 100);
    assert_eq!(s.byte_hard_limit(), -1);
    assert_eq!(s.count_hard_limit(), 2);
    assert_eq!(s.to_text(), t);
    assert_eq!(track("count=1,bytes=0").to_text(), "count=1,bytes=0");
    // Missing keys read -1 and are written as -1.
    assert_eq!(track("").to_text(), "count=-1,bytes=-1");
    assert_eq!(
        track("countHardLimit=4").to_text(),
        "count=-1,bytes=-1=;countHardLimit=4"
    );
}

/// The parser's corners, as `String.split` and `Long.parseLong` make them.
#[test]
fn stats_track_parses_like_java() {
    // Runs of separators are one; trailing ones are dropped.
    assert_eq!(track("count=1;;,bytes=2,;").to_text(), "count=1,bytes=2");
    // An empty value is -1, which only `a==5` gives (a, "", 5): `a=` splits into `a`
    // alone, which Java's parser indexes past.
    assert_eq!(track("count==5").count(), -1);
    assert!(StatsTrack::parse(b"count=,bytes=3").is_err());
    // A key given twice keeps its last value; a sign is allowed.
    assert_eq!(track("count=1,count=+7").count(), 7);
    // Java throws for these; so does the parser.
    assert!(StatsTrack::parse(b",count=1").is_err(), "leading separator");
    assert!(StatsTrack::parse(b"count").is_err(), "no value");
    assert!(StatsTrack::parse(b"count=x").is_err(), "not a number");
    assert!(StatsTrack::parse(b"count= 1").is_err(), "space");
    assert!(StatsTrack::parse(b"count=99999999999999999999").is_err());
}

#[test]
fn namespaces_and_trie_paths() {
    assert_eq!(top_namespace("/a/b"), Some("a"));
    assert_eq!(top_namespace("/a"), Some("a"));
    assert_eq!(top_namespace("/"), None);
    assert_eq!(top_namespace(""), None);
    assert_eq!(normalized("/a/b").as_deref(), Some("/a/b"));
    // PathTrie drops components that trim to nothing.
    assert_eq!(normalized("/a/ /b").as_deref(), Some("/a/b"));
    assert_eq!(normalized(""), None);
    assert_eq!(normalized("/ "), None);
}

struct Fixture {
    state: DataState,
    zxid: i64,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture {
            state: DataState::new(open_acl_unsafe(), true),
            zxid: 0,
        }
    }

    fn apply(&mut self, op: TxnOp) {
        self.zxid += 1;
        let txn = Txn {
            zxid: self.zxid,
            time_ms: 1000 + self.zxid,
            session_id: 0,
            cxid: 0,
            op,
        };
        apply(&mut self.state, &txn, true, &mut Vec::new());
    }

    fn create(&mut self, path: &str, data: &str) {
        let parent = self.state.tree.get(path::parent(path)).expect("parent");
        let op = TxnOp::Create {
            path: Arc::from(path),
            data: Some(Arc::from(data.as_bytes())),
            acl: open_acl_unsafe(),
            ephemeral_owner: 0,
            parent_cversion: parent.stat().cversion + 1,
        };
        self.apply(op);
    }

    fn set(&mut self, path: &str, data: &str) {
        let version = self.state.tree.get(path).expect("node").stat().version + 1;
        self.apply(TxnOp::SetData {
            path: Arc::from(path),
            data: Some(Arc::from(data.as_bytes())),
            version,
        });
    }

    fn delete(&mut self, path: &str) {
        self.apply(TxnOp::Delete {
            path: Arc::from(path),
        });
    }

    fn data(&self, path: &str) -> String {
        let n = self.state.tree.get(path).expect("node");
        String::from_utf8_lossy(n.data().unwrap_or_default()).into_owned()
    }

    /// What `setquota` creates for `quota` with `limits`.
    fn set_quota(&mut self, quota: &str, limits: &str) {
        let mut p = QUOTA.to_string();
        for c in quota.split('/').filter(|c| !c.is_empty()) {
            p.push('/');
            p.push_str(c);
            if !self.state.tree.contains(&p) {
                self.create(&p, "");
            }
        }
        self.create(&limit_path(quota), limits);
        self.create(&stat_path(quota), "count=0,bytes=0");
    }
}

/// The usage moves in place with creates, setData and deletes under the quota, and the
/// stats node's stat does not move (ZooKeeper: `updateQuotaStat` assigns the data).
#[test]
fn usage_follows_writes_in_place() {
    let mut f = Fixture::new();
    f.create("/q", "12");
    f.create("/q/a", "345");
    f.set_quota("/q", "count=-1,bytes=-1=;countHardLimit=5");
    let sp = stat_path("/q");
    assert_eq!(f.data(&sp), "count=2,bytes=5");
    let before = f.state.tree.get(&sp).expect("stats").stat();
    f.create("/q/a/b", "6789");
    assert_eq!(f.data(&sp), "count=3,bytes=9");
    f.set("/q/a", "x");
    assert_eq!(f.data(&sp), "count=3,bytes=7");
    f.delete("/q/a/b");
    assert_eq!(f.data(&sp), "count=2,bytes=3");
    // Outside the quota nothing moves.
    f.create("/other", "zzz");
    assert_eq!(f.data(&sp), "count=2,bytes=3");
    assert_eq!(f.state.tree.get(&sp).expect("stats").stat(), before);
    // Quota nodes are outside the digest.
    assert_eq!(f.state.digest, crate::core::digest::of_tree(&f.state.tree));
}

/// Only the deepest quota above a node moves (`getMaxPrefixWithQuota`).
#[test]
fn nested_quotas_update_the_deepest() {
    let mut f = Fixture::new();
    f.create("/a", "");
    f.create("/a/b", "");
    f.set_quota("/a", "count=10,bytes=-1");
    f.set_quota("/a/b", "count=10,bytes=-1");
    // The inner quota's own nodes live under /zookeeper/quota, not under /a.
    assert_eq!(f.data(&stat_path("/a")), "count=2,bytes=0");
    f.create("/a/b/c", "x");
    assert_eq!(f.data(&stat_path("/a/b")), "count=2,bytes=1");
    assert_eq!(f.data(&stat_path("/a")), "count=2,bytes=0");
    f.create("/a/d", "");
    assert_eq!(f.data(&stat_path("/a")), "count=3,bytes=0");
    assert_eq!(max_prefix(&f.state, "/a/b/c").as_deref(), Some("/a/b"));
    assert_eq!(max_prefix(&f.state, "/a/bc").as_deref(), Some("/a"));
    assert_eq!(max_prefix(&f.state, "/x"), None);
}

/// Loading recomputes every quota's usage and rebuilds the index (`setupQuota`), so a
/// state whose stats text was overwritten comes back computed from the tree.
#[test]
fn setup_rebuilds_index_and_usage() {
    let mut f = Fixture::new();
    f.create("/q", "");
    f.create("/q/a", "hello");
    f.set_quota("/q", "count=-1,bytes=-1=;countHardLimit=3");
    f.create("/r", "1");
    f.set_quota("/r", "count=4,bytes=-1");
    f.set(&stat_path("/q"), "count=99,bytes=99=;extra=1");
    let mut loaded = f.state.clone();
    loaded.quota_paths = Default::default();
    setup(&mut loaded);
    let paths: Vec<&str> = loaded.quota_paths.iter().map(|p| &**p).collect();
    assert_eq!(paths, ["/q", "/r"]);
    let data = |p: &str| {
        String::from_utf8_lossy(
            loaded
                .tree
                .get(p)
                .and_then(|n| n.data())
                .unwrap_or_default(),
        )
        .into_owned()
    };
    assert_eq!(data(&stat_path("/q")), "count=2,bytes=5");
    assert_eq!(data(&stat_path("/r")), "count=1,bytes=1");
    assert_eq!(loaded.digest, crate::core::digest::of_tree(&loaded.tree));
}

/// Deleting the limits node unregisters the quota; recreating it registers it again.
#[test]
fn limits_node_registers_and_unregisters() {
    let mut f = Fixture::new();
    f.create("/q", "");
    f.set_quota("/q", "count=1,bytes=-1");
    assert!(f.state.quota_paths.contains("/q"));
    f.delete(&limit_path("/q"));
    assert!(f.state.quota_paths.is_empty());
    f.create("/q/a", "");
    assert_eq!(f.data(&stat_path("/q")), "count=1,bytes=0");
    f.create(&limit_path("/q"), "count=1,bytes=-1");
    assert!(f.state.quota_paths.contains("/q"));
}

/// The check reads limits and usage: hard limits refuse, soft ones pass, and only the
/// dimension that changes is checked.
#[test]
fn check_refuses_only_hard_limits() {
    let mut f = Fixture::new();
    f.create("/q", "abc");
    f.set_quota("/q", "count=1,bytes=3=;byteHardLimit=5;countHardLimit=-1");
    let s = &f.state;
    let counts = ExceededCounts::default();
    // Count: soft limit 1, usage 1: a create passes (warning only).
    assert_eq!(check(s, "/q/a", 0, CheckOp::Create, &counts), Ok(()));
    // Bytes: hard limit 5, usage 3.
    assert_eq!(check(s, "/q/a", 2, CheckOp::Create, &counts), Ok(()));
    assert_eq!(
        check(s, "/q/a", 3, CheckOp::Create, &counts),
        Err(ErrorCode::QuotaExceeded)
    );
    assert_eq!(
        check(s, "/q", 6, CheckOp::SetData { old_len: 3 }, &counts),
        Err(ErrorCode::QuotaExceeded)
    );
    assert_eq!(
        check(s, "/q", 5, CheckOp::SetData { old_len: 3 }, &counts),
        Ok(())
    );
    // Outside the quota: nothing to check.
    assert_eq!(check(s, "/x", 100, CheckOp::Create, &counts), Ok(()));
    // The two refusals counted under the written path's top namespace; the soft
    // warning counted nothing.
    assert_eq!(
        counts.read().into_iter().collect::<Vec<_>>(),
        [("q".to_string(), 2)]
    );
}

/// A limits node whose text does not parse fails a checked write with
/// MarshallingError, as ZooKeeper's prep answers the exception its parser throws.
#[test]
fn unparseable_limits_refuse_with_marshalling_error() {
    let mut f = Fixture::new();
    f.create("/q", "");
    f.set_quota("/q", "count=1,bytes=-1");
    f.set(&limit_path("/q"), "count");
    let counts = ExceededCounts::default();
    assert_eq!(
        check(&f.state, "/q/a", 0, CheckOp::Create, &counts),
        Err(ErrorCode::MarshallingError)
    );
}

/// The mntr gauges sum each namespace's quotas; hard limits win over soft ones.
#[test]
fn namespace_metrics_sum_per_namespace() {
    let mut f = Fixture::new();
    f.create("/a", "");
    f.create("/a/x", "12");
    f.create("/a/y", "");
    f.create("/b", "");
    f.set_quota("/a/x", "count=10,bytes=-1=;countHardLimit=3");
    f.set_quota("/a/y", "count=5,bytes=100");
    f.set_quota("/b", "count=-1,bytes=-1=;byteHardLimit=7");
    let m = namespace_metrics(&f.state);
    let a = &m["a"];
    assert_eq!((a.count_limit, a.bytes_limit), (8, 99));
    assert_eq!((a.count_usage, a.bytes_usage), (2, 2));
    let b = &m["b"];
    assert_eq!((b.count_limit, b.bytes_limit), (-1, 7));
    assert_eq!((b.count_usage, b.bytes_usage), (1, 0));
}
