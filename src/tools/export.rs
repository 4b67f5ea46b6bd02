//! The way back: a ferrokeeper state written as an Apache ZooKeeper 3.8/3.9 `version-2`
//! snapshot (`snapshot.<hex zxid>`, uncompressed, "CHECKED" in ZooKeeper's terms) that
//! Java ZooKeeper starts from.
//!
//! The layout is the one `import::snapshot` reads (see its table), written in the order
//! ZooKeeper's `FileSnap.serialize` writes it:
//!
//! ```text
//! FileHeader      "ZKSN" | version 2 | dbid 0 (a standalone server's, and what 3.8 writes)
//! sessions        count, then { id | timeout ms } per session
//! ACL cache       count, then { id | vector<ACL> } per distinct ACL list (ids from 1)
//! nodes           { path | data | ACL id | StatPersisted }, parents before children,
//!                 the root under the path ""
//! end of nodes    the path "/"
//! seal            Adler32 of every byte before it | "/"
//! digest          last zxid | digest version 2 | tree digest | seal
//! ```
//!
//! ## Decisions
//!
//! - **Stats are written as stored.** ferrokeeper keeps each node's stat as ZooKeeper
//!   persists it (`StatPersisted`: `cversion` counts child creates; containers and TTL
//!   nodes keep their special `ephemeralOwner`), so nothing is translated.
//! - **The digest trailer** is written as 3.8 writes it when digests are on (the
//!   default): the tree digest at the snapshot's zxid, which ZooKeeper compares when it
//!   replays up to that zxid. A 3.9.3+ server reads a snapshot without the
//!   `lastProcessedZxid` block as 3.8's (that block is optional).
//! - **Null data** (a node created with null data) is written as a null buffer (−1), as
//!   ZooKeeper keeps it.
//! - **Sessions** keep their timeouts; Java's session tracker restarts each one's expiry
//!   clock. A session's password is not stored in a ZooKeeper snapshot: Java derives it
//!   from the session id, so a client holding a password ferrokeeper issued cannot
//!   reattach to Java and must open a new session (its ephemerals go when the old
//!   session expires). Sessions that ferrokeeper imported from ZooKeeper carry
//!   ZooKeeper's derived password and do reattach.
//! - **Memory.** The writer streams: it holds the list of nodes in path order and one
//!   node's bytes at a time, never the whole file.

use std::collections::HashMap;
use std::io::{self, Write};

use ferrokeeper_net::jute::{write_buffer, Encode};
use ferrokeeper_net::records::{Acl, FileHeader, StatPersisted};

use crate::core::digest::DIGEST_VERSION;
use crate::core::state::DataState;
use crate::core::tree::NodeStat;
use crate::import::format::{END_OF_NODES, FORMAT_VERSION, SEAL_PATH, SNAP_MAGIC};

/// The dbid ZooKeeper 3.8 writes in every snapshot header (it is never set to anything else).
pub const DBID: i64 = 0;
/// Bytes gathered before they are handed to the output (one node is usually far less).
const FLUSH_BYTES: usize = 64 * 1024;
/// How often, in nodes, the writer reports progress.
const PROGRESS_STEP_NODES: u64 = 4096;

/// What [`write_zookeeper_snapshot`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportSummary {
    /// The snapshot's zxid (the state's last zxid): the file must be named
    /// `snapshot.<zxid in lowercase hex>` ([`snapshot_file_name`]).
    pub zxid: i64,
    /// Znodes written, the root and the `/zookeeper` nodes included.
    pub nodes: u64,
    /// Sessions written.
    pub sessions: u64,
    /// Distinct ACL lists in the ACL cache.
    pub acl_lists: u64,
    /// The tree digest in the trailer.
    pub digest: i64,
    /// Bytes written.
    pub bytes: u64,
}

/// The name ZooKeeper gives a snapshot at `zxid` (`Util.makeSnapshotName`).
pub fn snapshot_file_name(zxid: i64) -> String {
    format!("snapshot.{zxid:x}")
}

/// Writes `state` (tree, sessions, last zxid) to `out` as a ZooKeeper 3.8 snapshot.
/// `out` may be a file, a socket or an HTTP body; it is written in chunks and flushed at
/// the end. An error is `out`'s own.
pub fn write_zookeeper_snapshot(
    state: &DataState,
    out: &mut impl Write,
) -> io::Result<ExportSummary> {
    write_zookeeper_snapshot_with(state, out, &mut |_, _| {})
}

// Long because it writes the file's sections in order (header, sessions, ACL cache,
// nodes, seal, digest), each a short loop over the state.
/// [`write_zookeeper_snapshot`] with progress: `progress(nodes_done, nodes_total)` is
/// called every few thousand nodes and once at the end.
pub fn write_zookeeper_snapshot_with(
    state: &DataState,
    out: &mut impl Write,
    progress: &mut dyn FnMut(u64, u64),
) -> io::Result<ExportSummary> {
    let mut w = Sealed::new(out);
    FileHeader {
        magic: SNAP_MAGIC,
        version: FORMAT_VERSION,
        dbid: DBID,
    }
    .encode(&mut w.buf);

    // Sessions, in id order so that one state always gives the same bytes.
    let mut sessions: Vec<(i64, i32)> = state
        .sessions
        .iter()
        .map(|(id, s)| (*id, s.timeout_ms))
        .collect();
    sessions.sort_unstable();
    len_i32(sessions.len())?.encode(&mut w.buf);
    for (id, timeout_ms) in &sessions {
        id.encode(&mut w.buf);
        timeout_ms.encode(&mut w.buf);
    }
    w.flush_if_full()?;

    // The ACL cache: one id per distinct list, numbered from 1 in path order (ZooKeeper's
    // ReferenceCountedACLCache numbers from 1 too; the ids mean nothing beyond the file).
    let nodes = state.tree.sorted_nodes();
    let total = nodes.len() as u64;
    let mut ids: HashMap<&[Acl], i64> = HashMap::new();
    let mut lists: Vec<&[Acl]> = Vec::new();
    for (_, node) in &nodes {
        let acl: &[Acl] = node.acl();
        if !ids.contains_key(acl) {
            lists.push(acl);
            ids.insert(acl, lists.len() as i64);
        }
    }
    len_i32(lists.len())?.encode(&mut w.buf);
    for (i, acl) in lists.iter().enumerate() {
        (i as i64 + 1).encode(&mut w.buf);
        len_i32(acl.len())?.encode(&mut w.buf);
        for a in acl.iter() {
            a.encode(&mut w.buf);
        }
        w.flush_if_full()?;
    }

    // Nodes in path order: a parent's path is a prefix of its children's, so it sorts
    // before them, which is all DataTree.deserialize asks.
    for (done, (path, node)) in nodes.iter().enumerate() {
        let stored = if *path == "/" { "" } else { path };
        stored.to_string().encode(&mut w.buf);
        match node.data() {
            Some(d) => write_buffer(&mut w.buf, d),
            None => (-1i32).encode(&mut w.buf),
        }
        ids.get(node.acl().as_ref())
            .copied()
            .unwrap_or(-1)
            .encode(&mut w.buf);
        persisted(&node.stat()).encode(&mut w.buf);
        w.flush_if_full()?;
        if (done as u64 + 1).is_multiple_of(PROGRESS_STEP_NODES) {
            progress(done as u64 + 1, total);
        }
    }
    END_OF_NODES.to_string().encode(&mut w.buf);
    w.seal()?;

    // DataTree.serializeZxidDigest: the digest of the tree as of the last zxid.
    state.last_zxid.encode(&mut w.buf);
    DIGEST_VERSION.encode(&mut w.buf);
    state.digest.encode(&mut w.buf);
    w.seal()?;
    let bytes = w.finish()?;
    progress(total, total);
    Ok(ExportSummary {
        zxid: state.last_zxid,
        nodes: total,
        sessions: sessions.len() as u64,
        acl_lists: lists.len() as u64,
        digest: state.digest,
        bytes,
    })
}

/// A node's stat as ZooKeeper persists it.
fn persisted(s: &NodeStat) -> StatPersisted {
    StatPersisted {
        czxid: s.czxid,
        mzxid: s.mzxid,
        ctime: s.ctime,
        mtime: s.mtime,
        version: s.version,
        cversion: s.cversion,
        aversion: s.aversion,
        ephemeral_owner: s.ephemeral_owner,
        pzxid: s.pzxid,
    }
}

/// A jute count; more than `i32::MAX` items cannot be written.
fn len_i32(n: usize) -> io::Result<i32> {
    i32::try_from(n).map_err(|_| io::Error::other(format!("{n} items do not fit a jute count")))
}

/// The output with ZooKeeper's `CheckedOutputStream`: every byte goes through an Adler32
/// that [`Sealed::seal`] writes out, as `SnapStream.sealStream` does.
struct Sealed<'a, W: Write> {
    out: &'a mut W,
    buf: Vec<u8>,
    adler: adler2::Adler32,
    written: u64,
}

impl<'a, W: Write> Sealed<'a, W> {
    fn new(out: &'a mut W) -> Self {
        Sealed {
            out,
            buf: Vec::with_capacity(FLUSH_BYTES * 2),
            adler: adler2::Adler32::new(),
            written: 0,
        }
    }

    fn flush_buf(&mut self) -> io::Result<()> {
        self.adler.write_slice(&self.buf);
        self.out.write_all(&self.buf)?;
        self.written += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    fn flush_if_full(&mut self) -> io::Result<()> {
        if self.buf.len() >= FLUSH_BYTES {
            self.flush_buf()?;
        }
        Ok(())
    }

    /// The checksum of every byte so far (as a long), then the string "/". The seal's
    /// own bytes are covered by the next seal, as in ZooKeeper's stream.
    fn seal(&mut self) -> io::Result<()> {
        self.flush_buf()?;
        i64::from(self.adler.checksum()).encode(&mut self.buf);
        SEAL_PATH.to_string().encode(&mut self.buf);
        self.flush_buf()
    }

    fn finish(mut self) -> io::Result<u64> {
        self.flush_buf()?;
        self.out.flush()?;
        Ok(self.written)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ferrokeeper_net::records::Id;

    use super::*;
    use crate::core::apply::apply;
    use crate::core::state::{CONTAINER_OWNER, EXTENDED_MASK};
    use crate::core::txn::{Txn, TxnOp};
    use crate::import::{import_zookeeper, DigestCheck};

    const SESSION: i64 = 0x1234_5678;

    fn digest_acl() -> Arc<[Acl]> {
        Arc::from(vec![Acl {
            perms: 1,
            id: Id {
                scheme: "digest".into(),
                id: "bob:abc=".into(),
            },
        }])
    }

    /// A state with every kind of node: persistent, null data, a second ACL, an
    /// ephemeral of a live session, a container and a TTL node.
    fn sample() -> DataState {
        let open = crate::core::sequencer::open_acl_unsafe();
        let mut state = DataState::new(open.clone(), true);
        let mut zxid = 0;
        let mut run = |state: &mut DataState, op: TxnOp| {
            zxid += 1;
            let txn = Txn {
                zxid,
                time_ms: 1_700_000_000_000 + zxid,
                session_id: SESSION,
                cxid: zxid as i32,
                op,
            };
            apply(state, &txn, true, &mut Vec::new());
        };
        run(
            &mut state,
            TxnOp::CreateSession {
                session_id: SESSION,
                timeout_ms: 30_000,
                passwd: [7; 16],
            },
        );
        let create =
            |path: &str, data: Option<&[u8]>, acl: &Arc<[Acl]>, owner: i64, cv| TxnOp::Create {
                path: Arc::from(path),
                data: data.map(Arc::from),
                acl: acl.clone(),
                ephemeral_owner: owner,
                parent_cversion: cv,
            };
        run(&mut state, create("/a", Some(b"hello"), &open, 0, 1));
        run(&mut state, create("/a/null", None, &open, 0, 1));
        run(
            &mut state,
            create("/a/secret", Some(b"s"), &digest_acl(), 0, 2),
        );
        run(&mut state, create("/a-b", Some(b""), &open, 0, 2));
        run(&mut state, create("/eph", Some(b"e"), &open, SESSION, 3));
        run(&mut state, create("/cont", None, &open, CONTAINER_OWNER, 4));
        run(
            &mut state,
            create("/ttl", None, &open, EXTENDED_MASK | 5000, 5),
        );
        run(
            &mut state,
            TxnOp::SetData {
                path: Arc::from("/a"),
                data: Some(Arc::from(&b"again"[..])),
                version: 1,
            },
        );
        state
    }

    fn temp_dir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!(
            "fk-export-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("version-2")).expect("mkdir");
        d
    }

    /// FileSnap.serialize's layout, checked by reading it back with the ZooKeeper
    /// snapshot reader of `import`: seals, ACL cache, node order, the digest trailer
    /// (compared with the tree, as ZooKeeper compares it when it replays to its zxid).
    #[test]
    fn export_reads_back_as_the_same_state() {
        let state = sample();
        let mut bytes = Vec::new();
        let summary = write_zookeeper_snapshot(&state, &mut bytes).expect("write");
        assert_eq!(summary.bytes, bytes.len() as u64);
        assert_eq!(summary.zxid, 9);
        assert_eq!(summary.sessions, 1);
        // Open, bob's digest ACL, and the read-only ACL of /zookeeper/config.
        let distinct: std::collections::BTreeSet<Vec<Acl>> = state
            .tree
            .sorted_nodes()
            .iter()
            .map(|(_, n)| n.acl().to_vec())
            .collect();
        assert_eq!(summary.acl_lists, distinct.len() as u64);
        assert!(summary.acl_lists >= 2);
        assert_eq!(summary.nodes, state.tree.len() as u64);

        let dir = temp_dir("readback");
        let file = dir.join("version-2").join(snapshot_file_name(summary.zxid));
        std::fs::write(&file, &bytes).expect("write file");
        let imported = import_zookeeper(&dir, None, &mut |_| {}).expect("import the export");
        assert_eq!(imported.digest, DigestCheck::Matched { zxid: 9 });
        assert_eq!(imported.last_zxid, 9);
        let (a, b) = (
            state.tree.sorted_nodes(),
            imported.state.tree.sorted_nodes(),
        );
        assert_eq!(a.len(), b.len());
        for ((pa, na), (pb, nb)) in a.iter().zip(b.iter()) {
            assert_eq!(pa, pb);
            assert_eq!(na.data(), nb.data(), "{pa}");
            assert_eq!(na.stat(), nb.stat(), "{pa}");
            assert_eq!(&**na.acl(), &**nb.acl(), "{pa}");
        }
        let session = &imported.state.sessions[&SESSION];
        assert_eq!(session.timeout_ms, 30_000);
        assert_eq!(
            session.ephemerals.iter().map(|p| &**p).collect::<Vec<_>>(),
            ["/eph"]
        );
        assert_eq!(imported.state.containers.len(), 1);
        assert_eq!(imported.state.ttls.len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Any flipped byte is caught by ZooKeeper's checks (the reader stands in for them):
    /// the export's seals cover every byte.
    #[test]
    fn every_byte_is_sealed() {
        let mut bytes = Vec::new();
        write_zookeeper_snapshot(&sample(), &mut bytes).expect("write");
        let dir = temp_dir("sealed");
        let file = dir.join("version-2").join(snapshot_file_name(9));
        // Every 7th byte keeps the test quick; the header's magic and version are
        // refused by name, everything else by a seal.
        for at in (0..bytes.len()).step_by(7) {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x10;
            std::fs::write(&file, &damaged).expect("write");
            assert!(
                import_zookeeper(&dir, None, &mut |_| {}).is_err(),
                "byte {at} flipped went unnoticed"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The output sees every byte once, in order, whatever its own buffering.
    #[test]
    fn a_failing_output_is_an_error() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other("disk full"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let e = write_zookeeper_snapshot(&sample(), &mut Full).expect_err("fails");
        assert_eq!(e.to_string(), "disk full");
    }
}
