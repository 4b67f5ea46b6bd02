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
    SnapshotSource, END_OF_NODES, FILE_HEADER_VERSION_AT, FORMAT_VERSION, SEAL_LEN, SEAL_PATH,
    SNAP_MAGIC,
};

/// The parser reads its source this many bytes at a time at least; the window it keeps
/// grows past that only for one record (or section count) that is larger.
const WINDOW_READ_BYTES: usize = 1 << 20;

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

/// One node record, its data borrowed from the parser's window (valid until the next
/// call).
#[derive(Debug)]
pub struct NodeRecord<'a> {
    /// Offset of the record's path in the (decompressed) snapshot.
    pub offset: u64,
    /// Path as stored: the root is "".
    pub path: String,
    /// Offset of the node's data bytes in the (decompressed) snapshot (where they would
    /// start when the data is null).
    pub data_at: u64,
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
///
/// It reads its source through a window: only the record being decoded (and up to
/// [`WINDOW_READ_BYTES`] read ahead) is held, not the whole decompressed snapshot, so
/// the import's memory does not grow with the snapshot's bytes (issue #13). Each field
/// is decoded from the window exactly as from the whole snapshot; a field that runs past
/// the window's end reads more and is decoded again, so a field that runs past the end
/// of the *snapshot* fails exactly as before, and every error names the same offset.
pub struct SnapshotParser<'s> {
    file: PathBuf,
    src: &'s mut dyn SnapshotSource,
    /// Bytes read from `src` and not yet released.
    // Invariant: keep <= pos <= window.len().
    window: Vec<u8>,
    /// Next byte to decode, in `window`.
    pos: usize,
    /// Bytes before `keep` belong to records already handed out and may be released.
    keep: usize,
    /// Offset in the snapshot of `window[0]`.
    base: u64,
    /// Adler32 of the snapshot's bytes before `window[0]`.
    released_sum: adler2::Adler32,
    /// `src` has no more bytes: `window[pos..]` is the whole rest of the snapshot.
    at_end: bool,
    /// Bytes to read at least each time the window runs short ([`WINDOW_READ_BYTES`];
    /// tests make it tiny so that every field meets a window edge).
    read_bytes: usize,
    /// The file header's dbid.
    pub dbid: i64,
}

impl<'s> SnapshotParser<'s> {
    /// Reads and checks the file header.
    pub fn new(
        file: &Path,
        src: &'s mut dyn SnapshotSource,
    ) -> Result<SnapshotParser<'s>, ImportError> {
        SnapshotParser::with_window(file, src, WINDOW_READ_BYTES)
    }

    /// [`SnapshotParser::new`] reading `read_bytes` at a time.
    fn with_window(
        file: &Path,
        src: &'s mut dyn SnapshotSource,
        read_bytes: usize,
    ) -> Result<SnapshotParser<'s>, ImportError> {
        let mut p = SnapshotParser {
            file: file.to_path_buf(),
            src,
            window: Vec::new(),
            pos: 0,
            keep: 0,
            base: 0,
            released_sum: adler2::Adler32::new(),
            at_end: false,
            read_bytes: read_bytes.max(1),
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
    pub fn position(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// How far the source is read: (done, in all), in its own units.
    pub fn source_progress(&self) -> (u64, u64) {
        self.src.progress()
    }

    /// The sessions: (id, timeout ms) pairs.
    pub fn sessions(&mut self) -> Result<Vec<(i64, i32)>, ImportError> {
        // Each session takes 12 bytes, which bounds the count before anything is reserved.
        let n = self.len_prefix(12, "session count")?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            self.release();
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
            self.release();
            let id = self.decode::<i64>("ACL cache id")?;
            let acl = self.decode::<Vec<Acl>>("ACL list")?;
            out.push((id, acl));
        }
        Ok(out)
    }

    /// The next node, or `None` at the end-of-nodes marker.
    pub fn next_node(&mut self) -> Result<Option<NodeRecord<'_>>, ImportError> {
        self.release();
        let offset = self.position();
        let path = self.decode::<String>("node path")?;
        if path == END_OF_NODES {
            return Ok(None);
        }
        // The data stays where it is in the snapshot while the fields after it are read:
        // the window may move, but never releases bytes of the current record.
        let data_at = self.position() + 4;
        let data_len = self.decode_with(offset, "node data", |r| {
            if r.rest().starts_with(&[0xff; 4]) {
                r.take(4)?;
                Ok(None)
            } else {
                Ok(Some(r.read_buffer()?.len()))
            }
        })?;
        let acl_ref = self.decode::<i64>("node ACL id")?;
        let stat = self.decode::<StatPersisted>("node stat")?;
        let data = data_len.map(|len| {
            let start = (data_at - self.base) as usize;
            &self.window[start..start + len]
        });
        Ok(Some(NodeRecord {
            offset,
            path,
            data_at,
            data,
            acl_ref,
            stat,
        }))
    }

    // Long because the optional blocks after the seal are recognised by the bytes left,
    // which it reads to the end first, and each block's absence is its own branch.
    /// Checks the seal after the nodes and reads the optional blocks after it.
    pub fn finish(mut self) -> Result<SnapshotTail, ImportError> {
        // What follows the nodes is small: read it all, so `remaining` is the real rest.
        while !self.at_end {
            self.read_more()?;
        }
        self.seal()?;
        let mut tail = SnapshotTail::default();
        // Which optional blocks follow depends on the writer's settings (digests and
        // lastProcessedZxid can each be switched off), and ZooKeeper's reader simply
        // tries them in order, treating end of input as "absent". A lastProcessedZxid
        // block alone is exactly 8 + 13 bytes; a digest block is never that short.
        let lone_last_zxid = self.remaining() == 8 + SEAL_LEN;
        if self.remaining() > 0 && !lone_last_zxid {
            let at = self.pos;
            let mut r = Reader::new(&self.window[at..]);
            match digest_block(&mut r) {
                Ok(d) => {
                    self.pos += r.position();
                    self.seal()?;
                    tail.digest = (d.zxid > 0).then_some(d);
                }
                // Too short for a digest block: an old or cut-off tail, ignored like EOF.
                Err(e) if runs_out(&e) => {}
                Err(e) => {
                    let e = self.rebase(e, at);
                    return Err(self.malformed(self.base + at as u64, "digest block", e));
                }
            }
        }
        if self.remaining() >= 8 + SEAL_LEN {
            tail.last_processed_zxid = Some(self.decode::<i64>("lastProcessedZxid")?);
            self.seal()?;
        }
        tail.trailing_bytes = self.remaining();
        Ok(tail)
    }

    /// `SnapStream.checkSealIntegrity`: the Adler32 of everything read so far, then "/".
    fn seal(&mut self) -> Result<(), ImportError> {
        let offset = self.position();
        let mut sum = self.released_sum;
        sum.write_slice(&self.window[..self.pos]);
        let computed = i64::from(sum.checksum());
        let stored = self.decode::<i64>("seal")?;
        let path = self.decode::<String>("seal")?;
        if stored != computed {
            return Err(ImportError::SnapshotChecksum {
                file: self.file.clone(),
                offset,
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

    /// Bytes in the window not yet decoded (after `finish` read to the end: the rest of
    /// the snapshot).
    fn remaining(&self) -> usize {
        self.window.len() - self.pos
    }

    /// Lets the window release everything decoded so far: the caller holds no record
    /// that borrows it.
    fn release(&mut self) {
        self.keep = self.pos;
    }

    /// Reads more of the source into the window, first dropping the released bytes
    /// (their Adler32 is kept for the seal). Reads at least `read_bytes`, and at
    /// least as much as the window holds undecoded, so a large field takes a few reads,
    /// not one per megabyte.
    fn read_more(&mut self) -> Result<(), ImportError> {
        if self.keep > 0 {
            self.released_sum.write_slice(&self.window[..self.keep]);
            self.window.drain(..self.keep);
            self.base += self.keep as u64;
            self.pos -= self.keep;
            self.keep = 0;
        }
        let want = self.read_bytes.max(self.window.len());
        let start = self.window.len();
        self.window.resize(start + want, 0);
        let mut filled = start;
        while filled < self.window.len() {
            match self.src.read(&mut self.window[filled..]) {
                Ok(0) => {
                    self.at_end = true;
                    break;
                }
                Ok(n) => filled += n,
                Err(e) => {
                    self.window.truncate(filled);
                    return Err(e);
                }
            }
        }
        self.window.truncate(filled);
        Ok(())
    }

    /// Decodes one field at the current position with `f`, reading more of the source
    /// while the field runs past the window's end; `at` is the offset errors name.
    fn decode_with<T>(
        &mut self,
        at: u64,
        what: &'static str,
        f: impl Fn(&mut Reader<'_>) -> Result<T, DecodeError>,
    ) -> Result<T, ImportError> {
        loop {
            let mut r = Reader::new(&self.window[self.pos..]);
            match f(&mut r) {
                Ok(v) => {
                    self.pos += r.position();
                    return Ok(v);
                }
                Err(e) if runs_out(&e) && !self.at_end => self.read_more()?,
                Err(e) => {
                    let e = self.rebase(e, self.pos);
                    return Err(self.malformed(at, what, e));
                }
            }
        }
    }

    fn len_prefix(&mut self, elem_min: usize, what: &'static str) -> Result<usize, ImportError> {
        let at = self.position();
        self.decode_with(at, what, |r| r.read_len(elem_min))
    }

    fn decode<T: Decode>(&mut self, what: &'static str) -> Result<T, ImportError> {
        let at = self.position();
        self.decode_with(at, what, T::decode)
    }

    /// `e` from a reader that started at window position `from`, with its offsets made
    /// offsets in the snapshot.
    fn rebase(&self, e: DecodeError, from: usize) -> DecodeError {
        let shift = |at: usize| at + (self.base as usize) + from;
        match e {
            DecodeError::Truncated { at, needed } => DecodeError::Truncated {
                at: shift(at),
                needed,
            },
            DecodeError::BadLength { at, len } => DecodeError::BadLength { at: shift(at), len },
            other => other,
        }
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

/// The digest block after the first seal (3.6+).
fn digest_block(r: &mut Reader<'_>) -> Result<SnapshotDigest, DecodeError> {
    let zxid = r.read_i64()?;
    let version = r.read_i32()?;
    let digest = if version < 2 {
        // Digest version 1 stored the value as a hex string.
        let at = r.position();
        let s = r.read_string()?;
        u64::from_str_radix(&s, 16).map_err(|_| DecodeError::BadLength {
            at,
            len: s.len() as i32,
        })? as i64
    } else {
        r.read_i64()?
    };
    Ok(SnapshotDigest {
        zxid,
        version,
        digest,
    })
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
    use crate::import::format::{adler32, InMemory};
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
        parse_in_window(bytes, WINDOW_READ_BYTES).map(|(paths, _, tail)| (paths, tail))
    }

    type Parsed = (Vec<String>, Vec<Option<Vec<u8>>>, SnapshotTail);

    fn parse_in_window(bytes: &[u8], read_bytes: usize) -> Result<Parsed, ImportError> {
        let mut src = InMemory::new(bytes);
        let mut p = SnapshotParser::with_window(Path::new("snapshot.3"), &mut src, read_bytes)?;
        p.sessions()?;
        p.acl_cache()?;
        let (mut paths, mut data) = (Vec::new(), Vec::new());
        while let Some(n) = p.next_node()? {
            data.push(n.data.map(<[u8]>::to_vec));
            paths.push(n.path);
        }
        Ok((paths, data, p.finish()?))
    }

    /// The window is an implementation detail: read a few bytes at a time, so that every
    /// field meets its edge, a snapshot parses to the same nodes and tail, and a cut or a
    /// flipped byte fails with the same error, as read whole.
    #[test]
    fn any_window_parses_as_whole() {
        let mut w = SnapWriter::new(2);
        w.sessions(&[(0x42, 30_000), (0x43, 5_000)])
            .acls(&[(1, open_acl())])
            .node("", b"", -1, stat(0))
            .node("/a", b"hello", 1, stat(3))
            .node("/big", &[7u8; 3000], 1, stat(4))
            .node("/empty", b"", -1, stat(5))
            .end_nodes()
            .seal()
            .digest(5, 0x77);
        9i64.encode(&mut w.out);
        w.seal();
        let whole = format!("{:?}", parse_in_window(&w.out, WINDOW_READ_BYTES));
        assert!(whole.starts_with("Ok"), "{whole}");
        for read_bytes in [1, 2, 3, 7, 13, 64, 1000] {
            let got = format!("{:?}", parse_in_window(&w.out, read_bytes));
            assert_eq!(got, whole, "window {read_bytes}");
        }
        for cut in (0..w.out.len()).step_by(11) {
            let whole = format!("{:?}", parse_in_window(&w.out[..cut], WINDOW_READ_BYTES));
            let small = format!("{:?}", parse_in_window(&w.out[..cut], 5));
            assert_eq!(small, whole, "cut at {cut}");
        }
        for flip in (0..w.out.len()).step_by(7) {
            let mut bad = w.out.clone();
            bad[flip] ^= 0x80;
            let whole = format!("{:?}", parse_in_window(&bad, WINDOW_READ_BYTES));
            let small = format!("{:?}", parse_in_window(&bad, 3));
            assert_eq!(small, whole, "flip at {flip}");
        }
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
