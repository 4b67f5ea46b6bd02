//! The snapshot parser: decompressed snapshot bytes in, sessions, ACL cache and nodes out,
//! in file order, with the Adler32 seals checked. It knows the byte layout and nothing
//! of ferrokeeper's state; `replay::Loader` builds the state from what it yields.
//!
//! Layout (`FileSnap.serialize`, `SerializeUtils.serializeSnapshot`, `DataTree.serialize`,
//! `ReferenceCountedACLCache.serialize`, `DataNode.serialize`, `SnapStream.sealStream`):
//!
//! ```text
//! FileHeader      magic "ZKSN" (int) | version 2 (int) | dbid (long)
//! sessions        count (int), then count × { id (long) | timeout ms (int) }
//! ACL cache       count (int), then count × { acl id (long) | vector<ACL> }
//! nodes           repeated { path (ustring) | data (buffer) | acl id (long) | StatPersisted }
//!                 depth first from the root, which is stored under the path ""
//! end of nodes    the path "/"
//! seal            Adler32 of all bytes before it (long) | "/" (ustring)
//! digest          optional (3.6+): zxid (long) | digest version (int) |
//!                 digest (long; a hex ustring when the version is below 2) | seal
//! last zxid       optional (3.9.3+): lastProcessedZxid (long) | seal
//! ```

use std::path::{Path, PathBuf};

use ferrokeeper_net::jute::{Decode, DecodeError, Reader};
use ferrokeeper_net::records::{Acl, FileHeader, StatPersisted};

use super::error::ImportError;
use super::format::{
    adler32, END_OF_NODES, FILE_HEADER_VERSION_AT, FORMAT_VERSION, SEAL_LEN, SEAL_PATH, SNAP_MAGIC,
};

/// The tree digest a snapshot carries (`DataTree.ZxidDigest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotDigest {
    /// The zxid the digest was taken at (0: no digest was recorded).
    pub zxid: i64,
    /// `DigestCalculator.DIGEST_VERSION` of the writer.
    pub version: i32,
    /// The tree digest.
    pub digest: i64,
}

/// One node record, borrowed from the snapshot bytes.
#[derive(Debug)]
pub struct NodeRecord<'a> {
    /// Offset of the record's path in the (decompressed) snapshot.
    pub offset: u64,
    /// Path as stored: the root is "".
    pub path: String,
    /// The node's data; `None` when ZooKeeper stored null (length −1).
    pub data: Option<&'a [u8]>,
    /// Id in the ACL cache, or −1 for `OPEN_ACL_UNSAFE`.
    pub acl_ref: i64,
    /// The node's persisted stat.
    pub stat: StatPersisted,
}

/// What follows the node list.
#[derive(Debug, Clone, Default)]
pub struct SnapshotTail {
    /// The digest block, if the writer had digests enabled and recorded one.
    pub digest: Option<SnapshotDigest>,
    /// `lastProcessedZxid`, written by 3.9.3 and later.
    pub last_processed_zxid: Option<i64>,
    /// Bytes after the last block this parser understands (ignored, as ZooKeeper does).
    pub trailing_bytes: usize,
}

/// Walks a snapshot in file order: [`SnapshotParser::new`] (header), then
/// [`sessions`](SnapshotParser::sessions), [`acl_cache`](SnapshotParser::acl_cache),
/// [`next_node`](SnapshotParser::next_node) until `None`, and [`finish`](SnapshotParser::finish).
pub struct SnapshotParser<'a> {
    file: PathBuf,
    bytes: &'a [u8],
    r: Reader<'a>,
    /// The file header's dbid.
    pub dbid: i64,
}

impl<'a> SnapshotParser<'a> {
    /// Reads and checks the file header.
    pub fn new(file: &Path, bytes: &'a [u8]) -> Result<SnapshotParser<'a>, ImportError> {
        let mut p = SnapshotParser {
            file: file.to_path_buf(),
            bytes,
            r: Reader::new(bytes),
            dbid: 0,
        };
        let header: FileHeader = p.decode("file header")?;
        if header.magic != SNAP_MAGIC {
            return Err(ImportError::BadMagic {
                file: p.file,
                found: header.magic,
                expected: SNAP_MAGIC,
            });
        }
        if header.version != FORMAT_VERSION {
            debug_assert_eq!(FILE_HEADER_VERSION_AT, 4);
            return Err(ImportError::UnsupportedVersion {
                file: p.file,
                version: header.version,
            });
        }
        p.dbid = header.dbid;
        Ok(p)
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.r.position()
    }

    /// Total bytes of the (decompressed) snapshot.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the snapshot has no bytes (never true after `new`).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The sessions: (id, timeout ms) pairs.
    pub fn sessions(&mut self) -> Result<Vec<(i64, i32)>, ImportError> {
        // Each session takes 12 bytes, which bounds the count before anything is reserved.
        let n = self.len_prefix(12, "session count")?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let id = self.decode::<i64>("session id")?;
            let timeout = self.decode::<i32>("session timeout")?;
            out.push((id, timeout));
        }
        Ok(out)
    }

    /// The ACL cache: (id, ACL list) pairs.
    pub fn acl_cache(&mut self) -> Result<Vec<(i64, Vec<Acl>)>, ImportError> {
        let n = self.len_prefix(12, "ACL cache count")?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let id = self.decode::<i64>("ACL cache id")?;
            let acl = self.decode::<Vec<Acl>>("ACL list")?;
            out.push((id, acl));
        }
        Ok(out)
    }

    /// The next node, or `None` at the end-of-nodes marker.
    pub fn next_node(&mut self) -> Result<Option<NodeRecord<'a>>, ImportError> {
        let offset = self.r.position() as u64;
        let path = self.decode::<String>("node path")?;
        if path == END_OF_NODES {
            return Ok(None);
        }
        let data = if self.r.rest().starts_with(&[0xff; 4]) {
            self.r
                .take(4)
                .map_err(|e| self.malformed(offset, "node data", e))?;
            None
        } else {
            Some(
                self.r
                    .read_buffer()
                    .map_err(|e| self.malformed(offset, "node data", e))?,
            )
        };
        let acl_ref = self.decode::<i64>("node ACL id")?;
        let stat = self.decode::<StatPersisted>("node stat")?;
        Ok(Some(NodeRecord {
            offset,
            path,
            data,
            acl_ref,
            stat,
        }))
    }

    /// Checks the seal after the nodes and reads the optional blocks after it.
    pub fn finish(mut self) -> Result<SnapshotTail, ImportError> {
        self.seal()?;
        let mut tail = SnapshotTail::default();
        // Which optional blocks follow depends on the writer's settings (digests and
        // lastProcessedZxid can each be switched off), and ZooKeeper's reader simply
        // tries them in order, treating end of input as "absent". A lastProcessedZxid
        // block alone is exactly 8 + 13 bytes; a digest block is never that short.
        let lone_last_zxid = self.r.remaining() == 8 + SEAL_LEN;
        if self.r.remaining() > 0 && !lone_last_zxid {
            let at = self.r.position();
            match self.digest_block() {
                Ok(d) => {
                    self.seal()?;
                    tail.digest = (d.zxid > 0).then_some(d);
                }
                // Too short for a digest block: an old or cut-off tail, ignored like EOF.
                Err(e) if runs_out(&e) => {
                    self.r = Reader::new(self.bytes);
                    self.r
                        .take(at)
                        .map_err(|e| self.malformed(at as u64, "tail", e))?;
                }
                Err(e) => return Err(self.malformed(at as u64, "digest block", e)),
            }
        }
        if self.r.remaining() >= 8 + SEAL_LEN {
            tail.last_processed_zxid = Some(self.decode::<i64>("lastProcessedZxid")?);
            self.seal()?;
        }
        tail.trailing_bytes = self.r.remaining();
        Ok(tail)
    }

    fn digest_block(&mut self) -> Result<SnapshotDigest, DecodeError> {
        let zxid = self.r.read_i64()?;
        let version = self.r.read_i32()?;
        let digest = if version < 2 {
            // Digest version 1 stored the value as a hex string.
            let at = self.r.position();
            let s = self.r.read_string()?;
            u64::from_str_radix(&s, 16).map_err(|_| DecodeError::BadLength {
                at,
                len: s.len() as i32,
            })? as i64
        } else {
            self.r.read_i64()?
        };
        Ok(SnapshotDigest {
            zxid,
            version,
            digest,
        })
    }

    /// `SnapStream.checkSealIntegrity`: the Adler32 of everything read so far, then "/".
    fn seal(&mut self) -> Result<(), ImportError> {
        let offset = self.r.position();
        let computed = adler32(&self.bytes[..offset]);
        let stored = self.decode::<i64>("seal")?;
        let path = self.decode::<String>("seal")?;
        if stored != computed {
            return Err(ImportError::SnapshotChecksum {
                file: self.file.clone(),
                offset: offset as u64,
                stored,
                computed,
            });
        }
        if path != SEAL_PATH {
            // ZooKeeper reads and ignores the string; a checksum that matches with a
            // different string would be a writer bug, not corruption, so accept it.
            tracing::warn!(file = %self.file.display(), offset, "snapshot seal string is {path:?}, not \"/\"");
        }
        Ok(())
    }

    fn len_prefix(&mut self, elem_min: usize, what: &'static str) -> Result<usize, ImportError> {
        let at = self.r.position() as u64;
        self.r
            .read_len(elem_min)
            .map_err(|e| self.malformed(at, what, e))
    }

    fn decode<T: Decode>(&mut self, what: &'static str) -> Result<T, ImportError> {
        let at = self.r.position() as u64;
        T::decode(&mut self.r).map_err(|e| self.malformed(at, what, e))
    }

    fn malformed(&self, offset: u64, what: &'static str, e: DecodeError) -> ImportError {
        match e {
            e if runs_out(&e) => ImportError::Truncated {
                file: self.file.clone(),
                offset,
                what,
            },
            detail => ImportError::Malformed {
                file: self.file.clone(),
                offset,
                what,
                detail,
            },
        }
    }
}

/// Whether a decode error means the input ended: a field cut short, or a length that
/// reaches past the end (which is what a cut inside a length-prefixed field looks like).
fn runs_out(e: &DecodeError) -> bool {
    match e {
        DecodeError::Truncated { .. } => true,
        DecodeError::BadLength { len, .. } => *len >= 0,
        _ => false,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ferrokeeper_net::jute::Encode;
    use ferrokeeper_net::records::Id;

    /// Builds snapshot bytes the way `FileSnap.serialize` writes them.
    pub(crate) struct SnapWriter {
        pub out: Vec<u8>,
    }

    impl SnapWriter {
        pub fn new(version: i32) -> SnapWriter {
            let mut out = Vec::new();
            FileHeader {
                magic: SNAP_MAGIC,
                version,
                dbid: 0,
            }
            .encode(&mut out);
            SnapWriter { out }
        }
        pub fn sessions(&mut self, s: &[(i64, i32)]) -> &mut Self {
            (s.len() as i32).encode(&mut self.out);
            for (id, t) in s {
                id.encode(&mut self.out);
                t.encode(&mut self.out);
            }
            self
        }
        pub fn acls(&mut self, a: &[(i64, Vec<Acl>)]) -> &mut Self {
            (a.len() as i32).encode(&mut self.out);
            for (id, acl) in a {
                id.encode(&mut self.out);
                acl.encode(&mut self.out);
            }
            self
        }
        pub fn node(
            &mut self,
            path: &str,
            data: &[u8],
            acl: i64,
            stat: StatPersisted,
        ) -> &mut Self {
            path.to_string().encode(&mut self.out);
            ferrokeeper_net::jute::write_buffer(&mut self.out, data);
            acl.encode(&mut self.out);
            stat.encode(&mut self.out);
            self
        }
        pub fn end_nodes(&mut self) -> &mut Self {
            "/".to_string().encode(&mut self.out);
            self
        }
        pub fn seal(&mut self) -> &mut Self {
            let sum = adler32(&self.out);
            sum.encode(&mut self.out);
            "/".to_string().encode(&mut self.out);
            self
        }
        pub fn digest(&mut self, zxid: i64, digest: i64) -> &mut Self {
            zxid.encode(&mut self.out);
            2i32.encode(&mut self.out);
            digest.encode(&mut self.out);
            self.seal()
        }
    }

    pub(crate) fn open_acl() -> Vec<Acl> {
        vec![Acl {
            perms: 31,
            id: Id {
                scheme: "world".into(),
                id: "anyone".into(),
            },
        }]
    }

    pub(crate) fn stat(zxid: i64) -> StatPersisted {
        StatPersisted {
            czxid: zxid,
            mzxid: zxid,
            ctime: 1000 + zxid,
            mtime: 1000 + zxid,
            pzxid: zxid,
            ..Default::default()
        }
    }

    fn sample() -> SnapWriter {
        let mut w = SnapWriter::new(2);
        w.sessions(&[(0x42, 30_000)])
            .acls(&[(1, open_acl())])
            .node("", b"", -1, stat(0))
            .node("/zookeeper", b"", -1, stat(0))
            .node("/a", b"hello", 1, stat(3))
            .end_nodes()
            .seal();
        w
    }

    fn parse(bytes: &[u8]) -> Result<(Vec<String>, SnapshotTail), ImportError> {
        let mut p = SnapshotParser::new(Path::new("snapshot.3"), bytes)?;
        p.sessions()?;
        p.acl_cache()?;
        let mut paths = Vec::new();
        while let Some(n) = p.next_node()? {
            paths.push(n.path);
        }
        Ok((paths, p.finish()?))
    }

    /// FileSnap.deserialize: header, sessions, ACL cache, nodes until "/", seal.
    #[test]
    fn parses_a_sealed_snapshot() {
        let mut w = sample();
        let (paths, tail) = parse(&w.out).expect("parse");
        assert_eq!(paths, ["", "/zookeeper", "/a"]);
        assert!(tail.digest.is_none() && tail.last_processed_zxid.is_none());

        w.digest(3, 0x1234);
        7i64.encode(&mut w.out);
        w.seal();
        let (_, tail) = parse(&w.out).expect("parse with tail");
        assert_eq!(tail.digest.map(|d| d.digest), Some(0x1234));
        assert_eq!(tail.last_processed_zxid, Some(7));
        assert_eq!(tail.trailing_bytes, 0);
    }

    /// A lastProcessedZxid block without a digest block (digests switched off).
    #[test]
    fn last_zxid_without_digest() {
        let mut w = sample();
        9i64.encode(&mut w.out);
        w.seal();
        let (_, tail) = parse(&w.out).expect("parse");
        assert_eq!(tail.digest, None);
        assert_eq!(tail.last_processed_zxid, Some(9));
    }

    /// SnapStream.checkSealIntegrity: one flipped byte fails the seal.
    #[test]
    fn bad_seal_names_offset() {
        let mut w = sample();
        let seal_at = w.out.len() - SEAL_LEN;
        w.out[seal_at - 30] ^= 0x01; // inside /a's stat
        match parse(&w.out) {
            Err(ImportError::SnapshotChecksum { offset, .. }) => {
                assert_eq!(offset, seal_at as u64)
            }
            other => panic!("expected checksum error, got {other:?}"),
        }
    }

    /// A snapshot cut anywhere is an error, never a panic or a short tree.
    #[test]
    fn truncated_anywhere_is_an_error() {
        let w = sample();
        for cut in 0..w.out.len() {
            match parse(&w.out[..cut]) {
                Err(ImportError::Truncated { .. }) => {}
                other => panic!("cut at {cut}: expected truncation, got {other:?}"),
            }
        }
    }

    /// FileHeader: a version other than 2 (a newer writer) and a foreign magic.
    #[test]
    fn newer_version_and_bad_magic() {
        let mut w = SnapWriter::new(3);
        w.sessions(&[]).acls(&[]).end_nodes().seal();
        assert!(matches!(
            parse(&w.out),
            Err(ImportError::UnsupportedVersion { version: 3, .. })
        ));
        let mut bytes = sample().out;
        bytes[..4].copy_from_slice(b"ZKLG");
        assert!(matches!(parse(&bytes), Err(ImportError::BadMagic { .. })));
    }

    /// Counts are checked against the bytes left before anything is reserved.
    #[test]
    fn absurd_counts_are_refused() {
        let mut w = SnapWriter::new(2);
        i32::MAX.encode(&mut w.out);
        assert!(parse(&w.out).is_err());
        let mut w = SnapWriter::new(2);
        (-5i32).encode(&mut w.out);
        assert!(matches!(
            parse(&w.out),
            Err(ImportError::Malformed { offset: 16, .. })
        ));
    }
}
