//! The transaction log reader: a `log.<zxid>` file's bytes in (streamed, so a 64 MiB
//! preallocated file costs one record of memory), ZooKeeper txns out, each checksum
//! verified. It mirrors `FileTxnLog.FileTxnIterator`; the txn bytes inside each record
//! are decoded by the core's codec ([`decode_record`]), the one ferrokeeper's own log
//! replay uses.
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

use ferrokeeper_net::jute::Decode;
use ferrokeeper_net::records::{FileHeader, TxnDigest, TxnHeader};

use super::error::ImportError;
use super::format::{
    adler32, FILE_HEADER_LEN, FORMAT_VERSION, LOG_MAGIC, LOG_RECORD_END, LOG_RECORD_PREFIX_LEN,
};
use crate::core::codec::{decode_record, RecordError, TxnRecord};

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

/// One log record.
#[derive(Debug, Clone)]
pub struct LogTxn {
    /// Offset of the record (its checksum) in the file.
    pub offset: u64,
    /// The txn header.
    pub header: TxnHeader,
    /// The txn record, as logged.
    pub op: TxnRecord,
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
        let logged = decode_record(body).map_err(|e| match e {
            RecordError::Decode { at, what, detail } => ImportError::Malformed {
                file: self.file.clone(),
                offset: body_at + at as u64,
                what,
                detail,
            },
            RecordError::UnknownType(txn_type) => ImportError::UnknownTxnType {
                file: self.file.clone(),
                offset,
                txn_type,
            },
        })?;
        self.pos = body_at + len as u64 + 1;
        Ok(LogItem::Txn(Box::new(LogTxn {
            offset,
            header: logged.header,
            op: logged.record,
            digest: logged.digest,
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ferrokeeper_net::codes::OpCode;
    use ferrokeeper_net::jute::{Buffer, Encode, NullableBuffer};
    use ferrokeeper_net::records::{CreateTxn, DeleteTxn, MultiTxn, Txn};

    use crate::core::codec::{decode, interpret, CreateKind};
    use crate::core::txn::TxnOp;

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
        assert!(matches!(&txns[1].op, TxnRecord::Delete { path } if path == "/a"));
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

    /// One ZooKeeper-written record decodes through the same function,
    /// `core::codec::decode_record`, when the import reads it from a log file and when
    /// `core::codec::decode` (ferrokeeper's log replay) turns it into a txn.
    #[test]
    fn import_and_core_codec_decode_one_zookeeper_record() {
        let mut ephemeral = create("/e");
        ephemeral.ephemeral = true;
        let multi = MultiTxn {
            txns: vec![
                Txn {
                    r#type: OpCode::Create.code(),
                    data: Buffer(ephemeral.to_bytes()),
                },
                Txn {
                    r#type: OpCode::Delete.code(),
                    data: Buffer(DeleteTxn { path: "/a".into() }.to_bytes()),
                },
            ],
        };
        let bytes = txn(7, OpCode::Multi, &multi, true);
        let mut w = LogWriter::new();
        w.record(&bytes);
        let (txns, _) = read_all(&w.out).expect("read");
        let [imported] = &txns[..] else {
            panic!("one txn expected, got {}", txns.len())
        };
        let logged = decode_record(&bytes).expect("record");
        assert_eq!(imported.header, logged.header);
        assert_eq!(imported.op, logged.record);
        assert_eq!(imported.digest, logged.digest);
        let TxnRecord::Multi(records) = &logged.record else {
            panic!("not a multi")
        };
        assert!(matches!(
            records[0],
            TxnRecord::Create {
                kind: CreateKind::Create,
                ephemeral: true,
                ..
            }
        ));

        let t = decode(&bytes).expect("txn");
        assert_eq!(
            (t.zxid, t.session_id, t.cxid, t.time_ms),
            (7, 0x77, 1, 5007)
        );
        let TxnOp::Multi(ops) = &t.op else {
            panic!("not a multi")
        };
        // CreateTxn names no owner: the header's session owns the ephemeral.
        assert!(matches!(
            &ops[0],
            TxnOp::Create { path, ephemeral_owner: 0x77, .. } if &**path == "/e"
        ));
        assert!(matches!(&ops[1], TxnOp::Delete { path } if &**path == "/a"));
        let interpreted = interpret(0x77, logged.record).expect("interpret");
        assert_eq!(format!("{:?}", t.op), format!("{interpreted:?}"));
    }
}
