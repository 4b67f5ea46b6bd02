//! The transaction log reader: a `log.<zxid>` file's bytes in (streamed, so a 64 MiB
//! preallocated file costs one record of memory), ZooKeeper txns out, each checksum
//! verified. It mirrors `FileTxnLog.FileTxnIterator` and `SerializeUtils.deserializeTxn`.
//!
//! Layout (`FileTxnLog` javadoc, `Util.marshallTxnEntry`, `Util.readTxnBytes`):
//!
//! ```text
//! FileHeader   magic "ZKLG" (int) | version 2 (int) | dbid (long)
//! records      checksum (long, Adler32 of the txn bytes) | length (int) |
//!              txn bytes: TxnHeader | txn record | optional TxnDigest (3.6+) |
//!              end-of-record byte 'B'
//! padding      zeros up to the preallocated size: a record length of 0 ends the log
//! ```
//!
//! End of data, as ZooKeeper reads it: a zero length (padding), the end of the file, or
//! a record cut short or missing its 'B' (a write torn by a crash) all end the file. A
//! complete record with a wrong checksum is corruption, and an error.

use std::io::Read;
use std::path::{Path, PathBuf};

use ferrokeeper_net::codes::OpCode;
use ferrokeeper_net::jute::{Decode, DecodeError, Reader};
use ferrokeeper_net::records::{
    Acl, CheckVersionTxn, CloseSessionTxn, CreateContainerTxn, CreateSessionTxn, CreateTtlTxn,
    CreateTxn, CreateTxnV0, DeleteTxn, ErrorTxn, FileHeader, MultiTxn, SetAclTxn, SetDataTxn,
    TxnDigest, TxnHeader,
};

use super::error::ImportError;
use super::format::{
    adler32, FILE_HEADER_LEN, FORMAT_VERSION, LOG_MAGIC, LOG_RECORD_END, LOG_RECORD_PREFIX_LEN,
    TXN_DIGEST_LEN,
};

/// How a log file's data ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogEnd {
    /// The file ends right after its last record.
    EndOfFile {
        /// File length.
        offset: u64,
    },
    /// Zero padding starts here (ZooKeeper preallocates log files with zeros).
    Padding {
        /// Offset of the first padding byte.
        offset: u64,
    },
    /// A record starting here is incomplete (cut short, or without its 'B'): a write
    /// torn by a crash. ZooKeeper ignores it and everything after it in the file.
    Torn {
        /// Offset of the partial record.
        offset: u64,
    },
}

/// Which create a `Create` op was logged as; replay treats them differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateKind {
    /// `OpCode.create` (1). Only this kind moves the parent's cversion when replay finds
    /// the node already present (`DataTree.processTxn`'s NODEEXISTS fix-up).
    Create,
    /// `OpCode.create2` (15).
    Create2,
    /// `OpCode.createTTL` (21), with its TTL in ms.
    Ttl(i64),
    /// `OpCode.createContainer` (19).
    Container,
}

/// One ZooKeeper txn, decoded but not interpreted: the record as logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZkOp {
    /// `createSession` (−10).
    CreateSession {
        /// Negotiated timeout.
        timeout_ms: i32,
    },
    /// `closeSession` (−11). 3.6+ list the ephemerals to delete; 3.5 logs no record.
    CloseSession {
        /// `CloseSessionTxn.paths2Delete`, when present.
        paths: Option<Vec<String>>,
    },
    /// `create`, `create2`, `createTTL`, `createContainer`.
    Create {
        /// Which create.
        kind: CreateKind,
        /// Final path.
        path: String,
        /// Data (`None`: null).
        data: Option<Vec<u8>>,
        /// ACL.
        acl: Vec<Acl>,
        /// Whether the session in the txn header owns the node.
        ephemeral: bool,
        /// The parent's new cversion; −1 (pre-3.3 `CreateTxnV0`) means "one more".
        parent_cversion: i32,
    },
    /// `delete` or `deleteContainer`.
    Delete {
        /// Path.
        path: String,
    },
    /// `setData`, or `reconfig` (which logs a `SetDataTxn` on `/zookeeper/config`).
    SetData {
        /// Path.
        path: String,
        /// New data (`None`: null).
        data: Option<Vec<u8>>,
        /// New version.
        version: i32,
    },
    /// `setACL`.
    SetAcl {
        /// Path.
        path: String,
        /// New ACL.
        acl: Vec<Acl>,
        /// New aversion.
        version: i32,
    },
    /// `check` (inside multi).
    Check {
        /// Path.
        path: String,
    },
    /// `error`: a failed request (or a failed multi's sub-op).
    Error {
        /// `KeeperException.Code`.
        err: i32,
    },
    /// `multi`.
    Multi(Vec<ZkOp>),
}

/// One log record.
#[derive(Debug, Clone)]
pub struct LogTxn {
    /// Offset of the record (its checksum) in the file.
    pub offset: u64,
    /// The txn header.
    pub header: TxnHeader,
    /// The txn.
    pub op: ZkOp,
    /// The tree digest after this txn, as the writer computed it (3.6+).
    pub digest: Option<TxnDigest>,
}

/// What [`LogReader::next_item`] yields.
#[derive(Debug)]
pub enum LogItem {
    /// A whole, checksummed txn.
    Txn(Box<LogTxn>),
    /// No more txns in this file.
    End(LogEnd),
}

/// Reads one log file's records in order.
pub struct LogReader<R> {
    file: PathBuf,
    src: R,
    pos: u64,
    buf: Vec<u8>,
    done: bool,
    /// The file header's dbid.
    pub dbid: i64,
}

impl<R: Read> LogReader<R> {
    /// Reads and checks the file header. `Ok(None)` for an empty file (ZooKeeper crashed
    /// after creating it, before writing the header).
    pub fn open(file: &Path, mut src: R) -> Result<Option<LogReader<R>>, ImportError> {
        let io = |source| ImportError::Io {
            path: file.to_path_buf(),
            source,
        };
        let mut head = [0u8; FILE_HEADER_LEN];
        let n = fill(&mut src, &mut head).map_err(io)?;
        if n == 0 {
            return Ok(None);
        }
        let header =
            FileHeader::from_bytes(&head[..n]).map_err(|detail| ImportError::Malformed {
                file: file.to_path_buf(),
                offset: 0,
                what: "log file header",
                detail,
            })?;
        if header.magic != LOG_MAGIC {
            return Err(ImportError::BadMagic {
                file: file.to_path_buf(),
                found: header.magic,
                expected: LOG_MAGIC,
            });
        }
        if header.version != FORMAT_VERSION {
            return Err(ImportError::UnsupportedVersion {
                file: file.to_path_buf(),
                version: header.version,
            });
        }
        Ok(Some(LogReader {
            file: file.to_path_buf(),
            src,
            pos: FILE_HEADER_LEN as u64,
            buf: Vec::new(),
            done: false,
            dbid: header.dbid,
        }))
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// The next txn, or how the file ends. After an `End`, keeps returning it.
    pub fn next_item(&mut self) -> Result<LogItem, ImportError> {
        let offset = self.pos;
        if self.done {
            return Ok(LogItem::End(LogEnd::EndOfFile { offset }));
        }
        let end = |this: &mut Self, e: LogEnd| {
            this.done = true;
            Ok(LogItem::End(e))
        };
        let io = |source| ImportError::Io {
            path: self.file.clone(),
            source,
        };

        let mut prefix = [0u8; LOG_RECORD_PREFIX_LEN];
        let n = fill(&mut self.src, &mut prefix).map_err(io)?;
        if n == 0 {
            return end(self, LogEnd::EndOfFile { offset });
        }
        if n < prefix.len() {
            // A few zero bytes at the very end are padding; anything else is a torn write.
            return if prefix[..n].iter().all(|b| *b == 0) {
                end(self, LogEnd::Padding { offset })
            } else {
                end(self, LogEnd::Torn { offset })
            };
        }
        let stored = i64::from_be_bytes(prefix[..8].try_into().expect("8 bytes"));
        let len = i32::from_be_bytes(prefix[8..].try_into().expect("4 bytes"));
        if len == 0 {
            // Util.readTxnBytes: "since we preallocate, we define EOF to be an empty
            // transaction".
            return end(self, LogEnd::Padding { offset });
        }
        if len < 0 {
            return Err(ImportError::LogBadLength {
                file: self.file.clone(),
                offset,
                len,
            });
        }
        // Read through `take` so a corrupt length cannot make us reserve gigabytes: the
        // buffer grows only as bytes actually arrive.
        self.buf.clear();
        let got = (&mut self.src)
            .take(len as u64 + 1)
            .read_to_end(&mut self.buf)
            .map_err(|source| ImportError::Io {
                path: self.file.clone(),
                source,
            })?;
        if got < len as usize + 1 || self.buf[len as usize] != LOG_RECORD_END {
            return end(self, LogEnd::Torn { offset });
        }
        let body = &self.buf[..len as usize];
        let computed = adler32(body);
        if computed != stored {
            return Err(ImportError::LogChecksum {
                file: self.file.clone(),
                offset,
                stored,
                computed,
            });
        }
        let body_at = offset + LOG_RECORD_PREFIX_LEN as u64;
        let (header, op, digest) = decode_txn(body).map_err(|e| match e {
            BodyError::Decode { at, what, detail } => ImportError::Malformed {
                file: self.file.clone(),
                offset: body_at + at as u64,
                what,
                detail,
            },
            BodyError::UnknownType(txn_type) => ImportError::UnknownTxnType {
                file: self.file.clone(),
                offset,
                txn_type,
            },
        })?;
        self.pos = body_at + len as u64 + 1;
        Ok(LogItem::Txn(Box::new(LogTxn {
            offset,
            header,
            op,
            digest,
        })))
    }
}

/// Reads until `buf` is full or the source ends; returns how many bytes were read.
fn fill(src: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match src.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Why a record's bytes did not decode.
#[derive(Debug)]
pub enum BodyError {
    /// A field did not decode; `at` is relative to the txn bytes.
    Decode {
        /// Offset within the txn bytes.
        at: usize,
        /// What was being read.
        what: &'static str,
        /// The decoder's complaint.
        detail: DecodeError,
    },
    /// A type ZooKeeper never logs (or never logs inside a multi).
    UnknownType(i32),
}

fn dec<T: Decode>(r: &mut Reader<'_>, what: &'static str) -> Result<T, BodyError> {
    let at = r.position();
    T::decode(r).map_err(|detail| BodyError::Decode { at, what, detail })
}

/// Decodes one record's txn bytes: header, record by type, optional digest.
pub fn decode_txn(body: &[u8]) -> Result<(TxnHeader, ZkOp, Option<TxnDigest>), BodyError> {
    let mut r = Reader::new(body);
    let header: TxnHeader = dec(&mut r, "txn header")?;
    let after_header = r.position();
    let op = match OpCode::from_i32(header.r#type) {
        Some(OpCode::CreateSession) => ZkOp::CreateSession {
            timeout_ms: dec::<CreateSessionTxn>(&mut r, "CreateSessionTxn")?.time_out,
        },
        Some(OpCode::CloseSession) => {
            // 3.6+ log a CloseSessionTxn (unless zookeeper.closeSessionTxn.enabled is
            // off); 3.5 log no record. Either may be followed by a 12-byte digest.
            let mut probe = r.clone();
            match CloseSessionTxn::decode(&mut probe) {
                Ok(t) if matches!(probe.remaining(), 0 | TXN_DIGEST_LEN) => {
                    r = probe;
                    ZkOp::CloseSession {
                        paths: Some(t.paths2_delete),
                    }
                }
                _ => ZkOp::CloseSession { paths: None },
            }
        }
        Some(OpCode::Create) => {
            let mut probe = r.clone();
            match CreateTxn::decode(&mut probe) {
                Ok(t) => {
                    r = probe;
                    create_op(CreateKind::Create, t)
                }
                // SerializeUtils.deserializeTxn: a create too short for CreateTxn is a
                // CreateTxnV0 (pre-3.3), whose parent cversion is "one more" (−1).
                Err(_) => {
                    let t: CreateTxnV0 = dec(&mut r, "CreateTxnV0")?;
                    ZkOp::Create {
                        kind: CreateKind::Create,
                        path: t.path,
                        data: t.data.0,
                        acl: t.acl,
                        ephemeral: t.ephemeral,
                        parent_cversion: -1,
                    }
                }
            }
        }
        Some(OpCode::Multi) => {
            let multi: MultiTxn = dec(&mut r, "MultiTxn")?;
            let mut ops = Vec::with_capacity(multi.txns.len());
            for sub in multi.txns {
                let mut sr = Reader::new(&sub.data);
                // Sub-record offsets point at the multi record as a whole.
                let op = decode_op(sub.r#type, &mut sr).map_err(|e| match e {
                    BodyError::Decode { what, detail, .. } => BodyError::Decode {
                        at: after_header,
                        what,
                        detail,
                    },
                    other => other,
                })?;
                ops.push(op);
            }
            ZkOp::Multi(ops)
        }
        _ => decode_op(header.r#type, &mut r)?,
    };
    let digest = match r.remaining() {
        0 => None,
        TXN_DIGEST_LEN => Some(dec::<TxnDigest>(&mut r, "TxnDigest")?),
        extra => {
            return Err(BodyError::Decode {
                at: r.position(),
                what: "txn record",
                detail: DecodeError::Trailing { extra },
            })
        }
    };
    Ok((header, op, digest))
}

fn create_op(kind: CreateKind, t: CreateTxn) -> ZkOp {
    ZkOp::Create {
        kind,
        path: t.path,
        data: t.data.0,
        acl: t.acl,
        ephemeral: t.ephemeral,
        parent_cversion: t.parent_c_version,
    }
}

/// The records that may appear both alone and inside a multi (`DataTree.processTxn`).
fn decode_op(txn_type: i32, r: &mut Reader<'_>) -> Result<ZkOp, BodyError> {
    Ok(match OpCode::from_i32(txn_type) {
        Some(OpCode::Create) => create_op(CreateKind::Create, dec(r, "CreateTxn")?),
        Some(OpCode::Create2) => create_op(CreateKind::Create2, dec(r, "CreateTxn")?),
        Some(OpCode::CreateTtl) => {
            let t: CreateTtlTxn = dec(r, "CreateTTLTxn")?;
            ZkOp::Create {
                kind: CreateKind::Ttl(t.ttl),
                path: t.path,
                data: t.data.0,
                acl: t.acl,
                ephemeral: false,
                parent_cversion: t.parent_c_version,
            }
        }
        Some(OpCode::CreateContainer) => {
            let t: CreateContainerTxn = dec(r, "CreateContainerTxn")?;
            ZkOp::Create {
                kind: CreateKind::Container,
                path: t.path,
                data: t.data.0,
                acl: t.acl,
                ephemeral: false,
                parent_cversion: t.parent_c_version,
            }
        }
        Some(OpCode::Delete | OpCode::DeleteContainer) => ZkOp::Delete {
            path: dec::<DeleteTxn>(r, "DeleteTxn")?.path,
        },
        Some(OpCode::SetData | OpCode::Reconfig) => {
            let t: SetDataTxn = dec(r, "SetDataTxn")?;
            ZkOp::SetData {
                path: t.path,
                data: t.data.0,
                version: t.version,
            }
        }
        Some(OpCode::SetAcl) => {
            let t: SetAclTxn = dec(r, "SetACLTxn")?;
            ZkOp::SetAcl {
                path: t.path,
                acl: t.acl,
                version: t.version,
            }
        }
        Some(OpCode::Check) => ZkOp::Check {
            path: dec::<CheckVersionTxn>(r, "CheckVersionTxn")?.path,
        },
        Some(OpCode::Error) => ZkOp::Error {
            err: dec::<ErrorTxn>(r, "ErrorTxn")?.err,
        },
        _ => return Err(BodyError::UnknownType(txn_type)),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ferrokeeper_net::jute::{Buffer, Encode, NullableBuffer};
    use ferrokeeper_net::records::Txn;

    /// An empty record (a 3.5 closeSession has none).
    pub(crate) struct Nothing;
    impl Encode for Nothing {
        fn encode(&self, _: &mut Vec<u8>) {}
    }

    /// Builds log bytes the way `FileTxnLog.append` writes them.
    pub(crate) struct LogWriter {
        pub out: Vec<u8>,
    }

    impl LogWriter {
        pub fn new() -> LogWriter {
            let mut out = Vec::new();
            FileHeader {
                magic: LOG_MAGIC,
                version: 2,
                dbid: 0,
            }
            .encode(&mut out);
            LogWriter { out }
        }
        /// Appends a record; returns its offset.
        pub fn record(&mut self, txn_bytes: &[u8]) -> usize {
            let at = self.out.len();
            adler32(txn_bytes).encode(&mut self.out);
            (txn_bytes.len() as i32).encode(&mut self.out);
            self.out.extend_from_slice(txn_bytes);
            self.out.push(b'B');
            at
        }
        pub fn pad(&mut self, n: usize) {
            self.out.resize(self.out.len() + n, 0);
        }
    }

    pub(crate) fn txn(zxid: i64, op: OpCode, record: &impl Encode, digest: bool) -> Vec<u8> {
        let mut b = TxnHeader {
            client_id: 0x77,
            cxid: 1,
            zxid,
            time: 5000 + zxid,
            r#type: op.code(),
        }
        .to_bytes();
        record.encode(&mut b);
        if digest {
            TxnDigest {
                version: 2,
                tree_digest: 99,
            }
            .encode(&mut b);
        }
        b
    }

    pub(crate) fn create(path: &str) -> CreateTxn {
        CreateTxn {
            path: path.into(),
            data: NullableBuffer(Some(b"x".to_vec())),
            acl: crate::import::snapshot::tests::open_acl(),
            ephemeral: false,
            parent_c_version: 1,
        }
    }

    fn read_all(bytes: &[u8]) -> Result<(Vec<LogTxn>, LogEnd), ImportError> {
        let mut r = LogReader::open(Path::new("log.1"), bytes)?.expect("header");
        let mut txns = Vec::new();
        loop {
            match r.next_item()? {
                LogItem::Txn(t) => txns.push(*t),
                LogItem::End(e) => return Ok((txns, e)),
            }
        }
    }

    #[test]
    fn reads_records_until_padding() {
        let mut w = LogWriter::new();
        w.record(&txn(1, OpCode::Create, &create("/a"), true));
        w.record(&txn(
            2,
            OpCode::Delete,
            &DeleteTxn { path: "/a".into() },
            false,
        ));
        let pad_at = w.out.len() as u64;
        w.pad(4096);
        let (txns, end) = read_all(&w.out).expect("read");
        assert_eq!(txns.len(), 2);
        assert_eq!(txns[0].digest.as_ref().map(|d| d.tree_digest), Some(99));
        assert!(matches!(&txns[1].op, ZkOp::Delete { path } if path == "/a"));
        assert_eq!(end, LogEnd::Padding { offset: pad_at });
    }

    /// Util.readTxnBytes: a record cut short, or missing its 'B', ends the file (a torn
    /// write), wherever the cut falls.
    #[test]
    fn torn_tail_is_tolerated_at_every_cut() {
        let mut w = LogWriter::new();
        w.record(&txn(1, OpCode::Create, &create("/a"), true));
        let last = w.record(&txn(2, OpCode::Create, &create("/b"), true));
        let full = w.out.clone();
        for cut in last + 1..full.len() {
            let (txns, end) = read_all(&full[..cut]).expect("torn tail is not an error");
            assert_eq!(txns.len(), 1, "cut {cut}");
            // A cut inside the checksum leaving only zero bytes reads as padding.
            let at = last as u64;
            assert!(
                matches!(end, LogEnd::Torn { offset } | LogEnd::Padding { offset } if offset == at),
                "cut {cut}: {end:?}"
            );
        }
        // The same record in preallocated space: complete length, zeros where the
        // rest of the body and the 'B' should be.
        let mut pre = full[..last + 20].to_vec();
        pre.resize(full.len() + 100, 0);
        let (txns, end) = read_all(&pre).expect("torn in padding");
        assert_eq!(
            (txns.len(), end),
            (
                1,
                LogEnd::Torn {
                    offset: last as u64
                }
            )
        );
    }

    /// FileTxnIterator.next: "CRC check failed" on a whole record is an error naming it.
    #[test]
    fn bad_checksum_mid_file_is_an_error() {
        let mut w = LogWriter::new();
        w.record(&txn(1, OpCode::Create, &create("/a"), true));
        let second = w.record(&txn(2, OpCode::Create, &create("/b"), true));
        w.record(&txn(3, OpCode::Create, &create("/c"), true));
        w.out[second + 30] ^= 0x40;
        match read_all(&w.out) {
            Err(ImportError::LogChecksum { offset, .. }) => assert_eq!(offset, second as u64),
            other => panic!("expected checksum error, got {other:?}"),
        }
    }

    #[test]
    fn newer_version_and_bad_magic() {
        let mut w = LogWriter::new();
        w.out[4..8].copy_from_slice(&3i32.to_be_bytes());
        assert!(matches!(
            read_all(&w.out),
            Err(ImportError::UnsupportedVersion { version: 3, .. })
        ));
        w.out[..4].copy_from_slice(b"ZKSN");
        assert!(matches!(
            read_all(&w.out),
            Err(ImportError::BadMagic { .. })
        ));
        assert!(LogReader::open(Path::new("log.1"), &b""[..])
            .expect("empty file")
            .is_none());
    }

    #[test]
    fn decodes_every_txn_kind() {
        let acl = crate::import::snapshot::tests::open_acl();
        // 3.5-style closeSession: no record at all.
        let (_, op, _) = decode_txn(&txn(1, OpCode::CloseSession, &Nothing, false)).expect("3.5");
        assert_eq!(op, ZkOp::CloseSession { paths: None });
        let close = CloseSessionTxn {
            paths2_delete: vec!["/e".into()],
        };
        let (_, op, d) = decode_txn(&txn(1, OpCode::CloseSession, &close, true)).expect("3.6");
        assert_eq!(
            op,
            ZkOp::CloseSession {
                paths: Some(vec!["/e".into()])
            }
        );
        assert!(d.is_some());
        let ttl = CreateTtlTxn {
            path: "/t".into(),
            data: NullableBuffer(Some(Vec::new())),
            acl: acl.clone(),
            parent_c_version: 4,
            ttl: 1000,
        };
        let (_, op, _) = decode_txn(&txn(1, OpCode::CreateTtl, &ttl, true)).expect("ttl");
        assert!(matches!(
            op,
            ZkOp::Create {
                kind: CreateKind::Ttl(1000),
                parent_cversion: 4,
                ..
            }
        ));
        let v0 = CreateTxnV0 {
            path: "/old".into(),
            data: NullableBuffer(Some(Vec::new())),
            acl: acl.clone(),
            ephemeral: true,
        };
        let (_, op, _) = decode_txn(&txn(1, OpCode::Create, &v0, false)).expect("v0");
        assert!(matches!(
            op,
            ZkOp::Create {
                parent_cversion: -1,
                ephemeral: true,
                ..
            }
        ));
        let multi = MultiTxn {
            txns: vec![
                Txn {
                    r#type: OpCode::Create2.code(),
                    data: Buffer(create("/m").to_bytes()),
                },
                Txn {
                    r#type: OpCode::SetData.code(),
                    data: Buffer(
                        SetDataTxn {
                            path: "/m".into(),
                            data: NullableBuffer(Some(b"y".to_vec())),
                            version: 1,
                        }
                        .to_bytes(),
                    ),
                },
            ],
        };
        let (_, op, _) = decode_txn(&txn(1, OpCode::Multi, &multi, true)).expect("multi");
        let ZkOp::Multi(ops) = op else {
            panic!("not a multi")
        };
        assert!(matches!(
            ops[0],
            ZkOp::Create {
                kind: CreateKind::Create2,
                ..
            }
        ));
        assert!(matches!(ops[1], ZkOp::SetData { version: 1, .. }));
        assert!(matches!(
            decode_txn(&txn(1, OpCode::GetData, &Nothing, false)),
            Err(BodyError::UnknownType(4))
        ));
    }
}
