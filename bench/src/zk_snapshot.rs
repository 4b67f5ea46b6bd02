//! Apache ZooKeeper 3.8 snapshot files written from scratch, so the `restart` workload
//! can put millions of znodes on disk in seconds instead of creating them through a
//! client for minutes.
//!
//! The file is what `FileSnap.serialize` writes with `snapshot.compression.method` unset
//! and no digest (3.8 writes a digest block when `digest.enabled`; its reader treats a
//! missing one as absent, `DataTree.deserializeZxidDigest` catching the EOF). All
//! integers are big-endian jute:
//!
//! ```text
//! FileHeader   magic "ZKSN" (int) | version 2 (int) | dbid −1 (long)
//! sessions     count (int), count × { id (long) | timeout ms (int) }
//! ACL cache    count (int), count × { id (long) | vector<ACL{perms, Id{scheme, id}}> }
//! nodes        { path (ustring) | data (buffer) | acl id (long) | StatPersisted }*,
//!              parents before children, the root under the path ""
//! end          the path "/"
//! seal         Adler32 of every byte before it (long) | "/" (ustring)
//! ```
//!
//! `StatPersisted` is czxid, mzxid, ctime, mtime (long), version, cversion, aversion
//! (int), ephemeralOwner, pzxid (long). The file is named `snapshot.<hex zxid>` after
//! the last zxid it includes (`Util.makeSnapshotName`), and ZooKeeper's quick check
//! (`SnapStream.isValidCheckedStream`) wants its last 5 bytes to be the ustring "/".
//!
//! The tree is what a ZooKeeper would hold after these txns, in zxid order (epoch 1):
//! `sessions` createSession, then creates of `/bench`, `/bench/restart`, its parents
//! `p0..p{parents-1}` and `live`, then the data znodes `n0..n{znodes-1}` (node `i` under
//! parent `i % parents`), then each session's ephemerals under `live`. Stats follow
//! `DataTree.createNode`: a new node's czxid = mzxid = pzxid = its zxid; its parent's
//! persisted cversion counts the creates under it and its pzxid is the last one's zxid.
//! The system nodes are as `new DataTree()` makes them: `/zookeeper` and
//! `/zookeeper/quota` with ACL id −1 (open), `/zookeeper/config` with `READ_ACL_UNSAFE`,
//! which takes ACL cache id 1, so the clients' `OPEN_ACL_UNSAFE` is id 2.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// `FileSnap.SNAP_MAGIC`: "ZKSN" as a big-endian int.
pub const SNAP_MAGIC: i32 = i32::from_be_bytes(*b"ZKSN");
/// `FileSnap.VERSION`.
pub const SNAP_VERSION: i32 = 2;
/// `FileSnap.dbId`.
pub const SNAP_DBID: i64 = -1;
/// The epoch of every generated zxid.
pub const EPOCH: i64 = 1;
/// `ReferenceCountedACLCache.OPEN_UNSAFE_ACL_ID`: the ACL of the system nodes.
pub const ACL_ID_SYSTEM: i64 = -1;
/// ACL cache id of `READ_ACL_UNSAFE` (`/zookeeper/config`).
pub const ACL_ID_READ_UNSAFE: i64 = 1;
/// ACL cache id of `OPEN_ACL_UNSAFE` (every node a client created).
pub const ACL_ID_OPEN_UNSAFE: i64 = 2;
/// `ZooDefs.Perms.READ` and `ALL`.
const PERMS_READ: i32 = 1;
const PERMS_ALL: i32 = 31;
/// Parent of the generated parents.
pub const RESTART_ROOT: &str = "/bench/restart";
/// Parent of the generated ephemerals.
pub const LIVE_PARENT: &str = "/bench/restart/live";
/// Wall clock of the first generated txn, ms since the epoch (2025-11-22). Fixed, so
/// the same spec always gives the same bytes.
const CTIME_BASE_MS: i64 = 1_763_769_600_000;
/// Generated creates per millisecond of ctime.
const CREATES_PER_MS: i64 = 1_000;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeSpec {
    /// Data znodes (`/bench/restart/p<k>/n<i>`).
    pub znodes: u64,
    /// Parents they are spread over, round robin.
    pub parents: u64,
    /// Bytes of data of each data znode.
    pub data_bytes: usize,
    /// Sessions alive in the snapshot.
    pub sessions: u64,
    /// Ephemerals each session owns.
    pub ephemerals_per_session: u64,
    /// Timeout of each session, ms.
    pub session_timeout_ms: i32,
}

/// A zxid of epoch [`EPOCH`].
fn zxid(counter: u64) -> i64 {
    (EPOCH << 32) | counter as i64
}

impl TreeSpec {
    /// The path of data znode `i`.
    pub fn path(&self, i: u64) -> String {
        let mut s = String::new();
        self.write_path(i, &mut s);
        s
    }

    /// Writes the path of data znode `i` into `out` (cleared first).
    pub fn write_path(&self, i: u64, out: &mut String) {
        out.clear();
        let _ = write!(out, "{RESTART_ROOT}/p{}/n{i}", i % self.parents);
    }

    /// The data of data znode `i`: its index, zero-padded, then letters, `data_bytes` in
    /// all (each node's data differs, so nothing can share it).
    pub fn data(&self, i: u64, out: &mut Vec<u8>) {
        out.clear();
        let digits = format!("{i:020}");
        out.extend(
            digits
                .bytes()
                .chain((0..).map(|k| b'a' + (k % 26) as u8))
                .take(self.data_bytes),
        );
    }

    /// The znode the restart probe reads: the last data znode the file holds.
    pub fn known_index(&self) -> u64 {
        self.znodes.saturating_sub(1)
    }

    /// Every znode of the tree: data znodes, their parents, the ephemerals and the
    /// system nodes (root, `/zookeeper`, `/zookeeper/quota`, `/zookeeper/config`).
    pub fn znodes_total(&self) -> u64 {
        4 + 2 + self.parents + 1 + self.znodes + self.ephemerals()
    }

    /// Ephemerals in all.
    pub fn ephemerals(&self) -> u64 {
        self.sessions * self.ephemerals_per_session
    }

    /// Session `s`'s id, as a standalone server (id 0) makes them
    /// (`SessionTrackerImpl.initializeNextSessionId`: `(now << 24) >>> 8`, then +1 each).
    pub fn session_id(&self, s: u64) -> i64 {
        (((CTIME_BASE_MS as u64) << 24) >> 8) as i64 + s as i64
    }

    // The txn counter of each create, in the order the module docs give.
    fn c_bench(&self) -> u64 {
        self.sessions + 1
    }
    fn c_restart(&self) -> u64 {
        self.c_bench() + 1
    }
    fn c_parent(&self, k: u64) -> u64 {
        self.c_restart() + 1 + k
    }
    fn c_live(&self) -> u64 {
        self.c_parent(self.parents)
    }
    fn c_data(&self, i: u64) -> u64 {
        self.c_live() + 1 + i
    }
    fn c_ephemeral(&self, j: u64) -> u64 {
        self.c_data(self.znodes) + j
    }
    /// The counter of the last txn.
    fn c_last(&self) -> u64 {
        self.c_ephemeral(self.ephemerals()) - 1
    }

    /// The zxid of the snapshot: its last txn's.
    pub fn last_zxid(&self) -> i64 {
        zxid(self.c_last())
    }

    /// Children of parent `k`.
    fn children_of(&self, k: u64) -> u64 {
        if k >= self.znodes {
            0
        } else {
            (self.znodes - k).div_ceil(self.parents)
        }
    }
}

/// `StatPersisted`, in jute field order.
#[derive(Debug, Clone, Copy, Default)]
struct StatPersisted {
    czxid: i64,
    mzxid: i64,
    ctime: i64,
    mtime: i64,
    version: i32,
    cversion: i32,
    aversion: i32,
    ephemeral_owner: i64,
    pzxid: i64,
}

/// The stat `DataTree.createStat` gives a node created by txn `counter`, with
/// `children` creates under it since, the last at `last_child`.
fn created(counter: u64, owner: i64, children: u64, last_child: u64) -> StatPersisted {
    let z = zxid(counter);
    let time = CTIME_BASE_MS + counter as i64 / CREATES_PER_MS;
    StatPersisted {
        czxid: z,
        mzxid: z,
        ctime: time,
        mtime: time,
        version: 0,
        cversion: children as i32,
        aversion: 0,
        ephemeral_owner: owner,
        pzxid: if children > 0 { zxid(last_child) } else { z },
    }
}

/// Adler-32 (RFC 1950 §9): `a` = 1 + the sum of the bytes, `b` = the sum of the `a`s,
/// both mod 65521; the value is `b << 16 | a`. What `java.util.zip.Adler32` computes.
#[derive(Debug, Clone)]
pub struct Adler32 {
    a: u32,
    b: u32,
}

/// The largest prime below 2^16.
const ADLER_MOD: u32 = 65_521;
/// Bytes that can be summed before `b` may overflow 32 bits (n(n+1)/2 · 255 +
/// (n+1)(MOD−1) < 2^32): the reductions happen once per chunk, not per byte.
const ADLER_CHUNK_BYTES: usize = 5_552;

impl Default for Adler32 {
    fn default() -> Self {
        Adler32 { a: 1, b: 0 }
    }
}

impl Adler32 {
    /// Adds `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(ADLER_CHUNK_BYTES) {
            for &x in chunk {
                self.a += u32::from(x);
                self.b += self.a;
            }
            self.a %= ADLER_MOD;
            self.b %= ADLER_MOD;
        }
    }

    /// The checksum of everything added.
    pub fn value(&self) -> u32 {
        (self.b << 16) | self.a
    }
}

/// A jute output stream that keeps the Adler32 of what it wrote, as ZooKeeper's
/// `CheckedOutputStream` does.
struct SealedWriter<W: Write> {
    out: W,
    sum: Adler32,
    bytes: u64,
}

impl<W: Write> SealedWriter<W> {
    fn raw(&mut self, b: &[u8]) -> io::Result<()> {
        self.sum.update(b);
        self.bytes += b.len() as u64;
        self.out.write_all(b)
    }
    fn int(&mut self, v: i32) -> io::Result<()> {
        self.raw(&v.to_be_bytes())
    }
    fn long(&mut self, v: i64) -> io::Result<()> {
        self.raw(&v.to_be_bytes())
    }
    /// A ustring or a non-null buffer: int32 length, then the bytes.
    fn bytes(&mut self, b: &[u8]) -> io::Result<()> {
        let len = i32::try_from(b.len()).map_err(|_| io::Error::other("field over 2 GiB"))?;
        self.int(len)?;
        self.raw(b)
    }
    fn acl(&mut self, perms: i32, scheme: &str, id: &str) -> io::Result<()> {
        self.int(perms)?;
        self.bytes(scheme.as_bytes())?;
        self.bytes(id.as_bytes())
    }
    fn node(&mut self, path: &str, data: &[u8], acl: i64, s: &StatPersisted) -> io::Result<()> {
        self.bytes(path.as_bytes())?;
        self.bytes(data)?;
        self.long(acl)?;
        for v in [s.czxid, s.mzxid, s.ctime, s.mtime] {
            self.long(v)?;
        }
        for v in [s.version, s.cversion, s.aversion] {
            self.int(v)?;
        }
        self.long(s.ephemeral_owner)?;
        self.long(s.pzxid)
    }
    /// `SnapStream.sealStream`: the checksum so far, then "/".
    fn seal(&mut self) -> io::Result<()> {
        let sum = i64::from(self.sum.value());
        self.long(sum)?;
        self.bytes(b"/")
    }
}

/// A written snapshot.
#[derive(Debug, Clone)]
pub struct Written {
    /// The file.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// Its zxid.
    pub last_zxid: i64,
}

/// Writes `spec`'s tree as `<data_dir>/version-2/snapshot.<hex zxid>` (to a temporary
/// name, then renamed, so a cut-off run leaves no file ZooKeeper would try).
pub fn write_snapshot(data_dir: &Path, spec: &TreeSpec) -> io::Result<Written> {
    assert!(spec.parents > 0, "a tree needs at least one parent");
    let dir = data_dir.join("version-2");
    std::fs::create_dir_all(&dir)?;
    let last_zxid = spec.last_zxid();
    let path = dir.join(format!("snapshot.{last_zxid:x}"));
    let tmp = dir.join(format!(".snapshot.{last_zxid:x}.tmp"));
    let mut w = SealedWriter {
        out: BufWriter::with_capacity(1 << 20, File::create(&tmp)?),
        sum: Adler32::default(),
        bytes: 0,
    };
    write_tree(&mut w, spec)?;
    let bytes = w.bytes;
    let file = w.out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, &path)?;
    Ok(Written {
        path,
        bytes,
        last_zxid,
    })
}

fn write_tree<W: Write>(w: &mut SealedWriter<W>, spec: &TreeSpec) -> io::Result<()> {
    w.int(SNAP_MAGIC)?;
    w.int(SNAP_VERSION)?;
    w.long(SNAP_DBID)?;

    w.int(spec.sessions as i32)?;
    for s in 0..spec.sessions {
        w.long(spec.session_id(s))?;
        w.int(spec.session_timeout_ms)?;
    }

    w.int(2)?;
    w.long(ACL_ID_READ_UNSAFE)?;
    w.int(1)?;
    w.acl(PERMS_READ, "world", "anyone")?;
    w.long(ACL_ID_OPEN_UNSAFE)?;
    w.int(1)?;
    w.acl(PERMS_ALL, "world", "anyone")?;

    let zero = StatPersisted::default();
    // The root: /bench is the one child a client created under it.
    let mut root = zero;
    root.cversion = 1;
    root.pzxid = zxid(spec.c_bench());
    w.node("", b"", ACL_ID_SYSTEM, &root)?;
    w.node("/zookeeper", b"", ACL_ID_SYSTEM, &zero)?;
    w.node("/zookeeper/quota", b"", ACL_ID_SYSTEM, &zero)?;
    w.node("/zookeeper/config", b"", ACL_ID_READ_UNSAFE, &zero)?;
    let open = ACL_ID_OPEN_UNSAFE;
    w.node(
        "/bench",
        b"",
        open,
        &created(spec.c_bench(), 0, 1, spec.c_restart()),
    )?;
    w.node(
        RESTART_ROOT,
        b"",
        open,
        &created(spec.c_restart(), 0, spec.parents + 1, spec.c_live()),
    )?;

    let mut path = String::new();
    let mut data = Vec::with_capacity(spec.data_bytes);
    for k in 0..spec.parents {
        let children = spec.children_of(k);
        let last = k + children.saturating_sub(1) * spec.parents;
        path.clear();
        let _ = write!(path, "{RESTART_ROOT}/p{k}");
        w.node(
            &path,
            b"",
            open,
            &created(spec.c_parent(k), 0, children, spec.c_data(last)),
        )?;
        let mut i = k;
        while i < spec.znodes {
            spec.write_path(i, &mut path);
            spec.data(i, &mut data);
            w.node(&path, &data, open, &created(spec.c_data(i), 0, 0, 0))?;
            i += spec.parents;
        }
    }

    let ephemerals = spec.ephemerals();
    w.node(
        LIVE_PARENT,
        b"",
        open,
        &created(
            spec.c_live(),
            0,
            ephemerals,
            spec.c_ephemeral(ephemerals.saturating_sub(1)),
        ),
    )?;
    for j in 0..ephemerals {
        let s = j / spec.ephemerals_per_session;
        path.clear();
        let _ = write!(
            path,
            "{LIVE_PARENT}/s{s}-e{}",
            j % spec.ephemerals_per_session
        );
        let owner = spec.session_id(s);
        w.node(
            &path,
            b"alive",
            open,
            &created(spec.c_ephemeral(j), owner, 0, 0),
        )?;
    }

    w.bytes(b"/")?;
    w.seal()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(znodes: u64) -> TreeSpec {
        TreeSpec {
            znodes,
            parents: 3,
            data_bytes: 24,
            sessions: 2,
            ephemerals_per_session: 2,
            session_timeout_ms: 30_000,
        }
    }

    #[test]
    fn adler32_matches_rfc1950_values() {
        // Values of java.util.zip.Adler32 / zlib's adler32 for these inputs.
        let sum = |b: &[u8]| {
            let mut a = Adler32::default();
            a.update(b);
            a.value()
        };
        assert_eq!(sum(b""), 1);
        assert_eq!(sum(b"Wikipedia"), 0x11E6_0398);
        // Long input crosses the chunk boundary; split updates agree with one update.
        let long: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut split = Adler32::default();
        split.update(&long[..7_000]);
        split.update(&long[7_000..]);
        assert_eq!(split.value(), sum(&long));
        let naive = long.iter().fold((1u32, 0u32), |(a, b), &x| {
            let a = (a + u32::from(x)) % ADLER_MOD;
            (a, (b + a) % ADLER_MOD)
        });
        assert_eq!(sum(&long), (naive.1 << 16) | naive.0);
    }

    #[test]
    fn snapshot_ends_with_a_seal_over_everything_before_it() {
        let dir = std::env::temp_dir().join(format!("zk-snapshot-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let s = spec(10);
        let written = write_snapshot(&dir, &s).expect("written");
        let bytes = std::fs::read(&written.path).expect("read back");
        assert_eq!(bytes.len() as u64, written.bytes);
        assert_eq!(
            written.path.file_name().and_then(|n| n.to_str()),
            Some(format!("snapshot.{:x}", s.last_zxid()).as_str())
        );
        // Header.
        assert_eq!(&bytes[..4], b"ZKSN");
        assert_eq!(&bytes[4..8], &2i32.to_be_bytes());
        // Trailer: end-of-nodes "/", then Adler32 of all before the seal, then "/".
        let n = bytes.len();
        assert_eq!(&bytes[n - 5..], &[0, 0, 0, 1, b'/']);
        let mut sum = Adler32::default();
        sum.update(&bytes[..n - 13]);
        assert_eq!(&bytes[n - 13..n - 5], &i64::from(sum.value()).to_be_bytes());
        assert_eq!(&bytes[n - 18..n - 13], &[0, 0, 0, 1, b'/']);
        // Every data znode path is there, after its parent.
        let text = String::from_utf8_lossy(&bytes);
        for i in 0..10 {
            let p = s.path(i);
            let parent = &p[..p.rfind('/').expect("slash")];
            let (at_p, at_n) = (text.find(parent), text.find(&p));
            assert!(at_p.is_some() && at_n.is_some() && at_p < at_n, "{p}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn zxids_and_counts_follow_the_create_order() {
        let s = spec(10);
        assert_eq!(s.children_of(0) + s.children_of(1) + s.children_of(2), 10);
        assert_eq!(s.children_of(0), 4); // n0, n3, n6, n9
        assert_eq!(s.children_of(2), 3);
        assert_eq!(s.znodes_total(), 4 + 2 + 3 + 1 + 10 + 4);
        // 2 sessions, /bench, /bench/restart, 3 parents, live, 10 nodes, 4 ephemerals.
        assert_eq!(s.last_zxid(), (1 << 32) | 22);
        let mut d = Vec::new();
        s.data(7, &mut d);
        assert_eq!(&d[..], b"00000000000000000007abcd");
        assert_eq!(s.path(7), "/bench/restart/p1/n7");
    }
}
