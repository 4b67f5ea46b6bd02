//! What the load generator sends: requests pre-encoded once and stamped with an xid per
//! send, so the client's hot path is a `memcpy` and four byte writes, not an encoder and
//! an allocation.
//!
//! A [`Template`] is a whole framed request encoded with xid 0; [`Template::append`]
//! copies it into a connection's write buffer and patches the xid. Requests whose path
//! changes per send (creates, deletes) are written with [`PathRequest`]: the bytes after
//! the path are pre-encoded, the path is formatted into a reused `String`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ferrokeeper_net::frame::{begin_frame, end_frame};
use ferrokeeper_net::jute::{Encode, NullableBuffer};
use ferrokeeper_net::records::{
    Acl, CreateRequest, DeleteRequest, ExistsRequest, GetChildrenRequest, GetDataRequest, Id,
    RequestHeader, SetDataRequest,
};
use ferrokeeper_net::request::{MultiOp, Request};
use ferrokeeper_net::OpCode;

/// Byte offset of the xid in a framed request: after the 4-byte length.
const XID_OFFSET: usize = 4;

/// The kinds of request the workloads send (for error messages and per-kind counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// getData.
    GetData,
    /// setData.
    SetData,
    /// exists.
    Exists,
    /// getChildren.
    GetChildren,
    /// create.
    Create,
    /// delete.
    Delete,
    /// multi.
    Multi,
}

impl OpKind {
    /// ZooKeeper's name for the request.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::GetData => "getData",
            OpKind::SetData => "setData",
            OpKind::Exists => "exists",
            OpKind::GetChildren => "getChildren",
            OpKind::Create => "create",
            OpKind::Delete => "delete",
            OpKind::Multi => "multi",
        }
    }
}

/// A framed request encoded once with xid 0.
#[derive(Debug, Clone)]
pub struct Template {
    bytes: Vec<u8>,
}

impl Template {
    /// Encodes `request`.
    pub fn new(request: &Request) -> Template {
        let mut bytes = Vec::new();
        request.encode_frame(0, &mut bytes);
        Template { bytes }
    }

    /// Appends the request to `out` under `xid`.
    pub fn append(&self, xid: i32, out: &mut Vec<u8>) {
        let at = out.len();
        out.extend_from_slice(&self.bytes);
        out[at + XID_OFFSET..at + XID_OFFSET + 4].copy_from_slice(&xid.to_be_bytes());
    }
}

/// The ACL every benchmark node gets: world:anyone with all permissions.
pub fn open_acl() -> Vec<Acl> {
    vec![Acl {
        perms: ferrokeeper_net::codes::perms::ALL,
        id: Id {
            scheme: "world".into(),
            id: "anyone".into(),
        },
    }]
}

/// A request whose record starts with a path that changes per send: create (persistent,
/// with fixed data) or delete (any version).
#[derive(Debug, Clone)]
pub struct PathRequest {
    opcode: OpCode,
    /// The record's bytes after the path.
    suffix: Vec<u8>,
}

impl PathRequest {
    /// A persistent create with `data` and the open ACL.
    pub fn create(data: &[u8]) -> PathRequest {
        let record = CreateRequest {
            path: String::new(),
            data: NullableBuffer(Some(data.to_vec())),
            acl: open_acl(),
            flags: 0,
        };
        PathRequest::from_record(OpCode::Create, &record)
    }

    /// A delete of any version.
    pub fn delete() -> PathRequest {
        let record = DeleteRequest {
            path: String::new(),
            version: -1,
        };
        PathRequest::from_record(OpCode::Delete, &record)
    }

    fn from_record(opcode: OpCode, record: &impl Encode) -> PathRequest {
        let mut bytes = Vec::new();
        record.encode(&mut bytes);
        // The empty path encodes as its 4-byte length (0); everything after it is fixed.
        assert_eq!(
            &bytes[..4],
            &[0, 0, 0, 0],
            "record does not start with a path"
        );
        PathRequest {
            opcode,
            suffix: bytes[4..].to_vec(),
        }
    }

    /// Bytes of data a create carries (0 for other requests): the suffix starts with the
    /// data's 4-byte length.
    pub fn data_len(&self) -> usize {
        match self.opcode {
            OpCode::Create => {
                let len = i32::from_be_bytes(self.suffix[..4].try_into().expect("4 bytes"));
                len.max(0) as usize
            }
            _ => 0,
        }
    }

    /// Appends the framed request for `path` under `xid`.
    pub fn append(&self, xid: i32, path: &String, out: &mut Vec<u8>) {
        let at = begin_frame(out);
        RequestHeader {
            xid,
            r#type: self.opcode.code(),
        }
        .encode(out);
        path.encode(out);
        out.extend_from_slice(&self.suffix);
        end_frame(out, at);
    }
}

/// Where the next request of a session comes from. One source per worker thread;
/// `session` is the session's index over all workers.
pub trait OpSource: Send {
    /// Appends the next request for `session` under `xid` and says what it was, or
    /// `None` when the source has nothing more to send.
    fn next(&mut self, session: usize, xid: i32, out: &mut Vec<u8>) -> Option<OpKind>;
}

/// A small, fast generator (xorshift64*); statistical quality is beside the point here,
/// only a cheap, seeded, uniform pick.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }
}

/// One class of requests in a [`Mix`]: its share, its kind, and the templates one is
/// picked from uniformly.
#[derive(Debug)]
pub struct MixClass {
    /// Share of all requests, in per mille.
    pub per_mille: u32,
    /// What these requests are.
    pub kind: OpKind,
    /// The candidates.
    pub templates: Arc<Vec<Template>>,
}

/// Requests drawn at random from pre-encoded classes: read, write, mixed, exists,
/// children and multi are all mixes.
pub struct Mix {
    classes: Arc<Vec<MixClass>>,
    rng: Rng,
}

impl Mix {
    /// A source over `classes` (shares must add up to 1000).
    pub fn new(classes: Arc<Vec<MixClass>>, seed: u64) -> Mix {
        let total: u32 = classes.iter().map(|c| c.per_mille).sum();
        assert_eq!(total, 1000, "mix shares must add up to 1000 per mille");
        assert!(classes.iter().all(|c| !c.templates.is_empty()));
        Mix {
            classes,
            rng: Rng::new(seed),
        }
    }
}

impl OpSource for Mix {
    fn next(&mut self, _session: usize, xid: i32, out: &mut Vec<u8>) -> Option<OpKind> {
        let mut draw = if self.classes.len() == 1 {
            0
        } else {
            self.rng.below(1000) as u32
        };
        for class in self.classes.iter() {
            if draw < class.per_mille {
                let t = &class.templates[self.rng.below(class.templates.len())];
                t.append(xid, out);
                return Some(class.kind);
            }
            draw -= class.per_mille;
        }
        unreachable!("shares add up to 1000")
    }
}

/// Templates of one request per data node: getData, exists or setData.
pub fn per_node_templates(paths: &[String], kind: OpKind, data: &[u8]) -> Vec<Template> {
    paths
        .iter()
        .map(|p| {
            let path = p.clone();
            Template::new(&match kind {
                OpKind::GetData => Request::GetData(GetDataRequest { path, watch: false }),
                OpKind::Exists => Request::Exists(ExistsRequest { path, watch: false }),
                OpKind::SetData => Request::SetData(SetDataRequest {
                    path,
                    data: NullableBuffer(Some(data.to_vec())),
                    version: -1,
                }),
                OpKind::GetChildren => {
                    Request::GetChildren(GetChildrenRequest { path, watch: false })
                }
                other => panic!("no per-node template for {other:?}"),
            })
        })
        .collect()
}

/// `count` multi templates, each of `ops` setData on nodes picked at random (distinct
/// within one multi when there are enough nodes).
pub fn multi_templates(
    paths: &[String],
    data: &[u8],
    ops: usize,
    count: usize,
    seed: u64,
) -> Vec<Template> {
    if paths.is_empty() {
        // No data nodes (`run --nodes 0`): nothing to set, and `multi` cannot run.
        return Vec::new();
    }
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|_| {
            let mut picked: Vec<usize> = Vec::with_capacity(ops);
            while picked.len() < ops {
                let i = rng.below(paths.len());
                if !picked.contains(&i) || paths.len() < ops {
                    picked.push(i);
                }
            }
            let multi = picked
                .iter()
                .map(|&i| {
                    MultiOp::SetData(SetDataRequest {
                        path: paths[i].clone(),
                        data: NullableBuffer(Some(data.to_vec())),
                        version: -1,
                    })
                })
                .collect();
            Template::new(&Request::Multi(multi))
        })
        .collect()
}

/// Each session creates its own node and deletes it, over and over: create, delete,
/// create, ... Per-session FIFO order guarantees each delete finds its create done.
pub struct CreateDelete {
    prefix: String,
    create: PathRequest,
    delete: PathRequest,
    /// Per session: whether the next request is a create.
    next_is_create: Vec<bool>,
    path: String,
}

impl CreateDelete {
    /// Nodes are `{prefix}-s{session}`; `prefix` must be unique to the run.
    pub fn new(prefix: String, data: &[u8]) -> CreateDelete {
        CreateDelete {
            prefix,
            create: PathRequest::create(data),
            delete: PathRequest::delete(),
            next_is_create: Vec::new(),
            path: String::new(),
        }
    }
}

impl OpSource for CreateDelete {
    fn next(&mut self, session: usize, xid: i32, out: &mut Vec<u8>) -> Option<OpKind> {
        if self.next_is_create.len() <= session {
            self.next_is_create.resize(session + 1, true);
        }
        self.path.clear();
        let _ = write!(self.path, "{}-s{}", self.prefix, session);
        let create = self.next_is_create[session];
        self.next_is_create[session] = !create;
        if create {
            self.create.append(xid, &self.path, out);
            Some(OpKind::Create)
        } else {
            self.delete.append(xid, &self.path, out);
            Some(OpKind::Delete)
        }
    }
}

/// Creates `{prefix}/n0 .. {prefix}/n{count-1}` once each, shared by all workers through
/// one counter: the preload and the `load` workload.
pub struct CountedCreate {
    prefix: Arc<str>,
    next: Arc<AtomicU64>,
    count: u64,
    create: PathRequest,
    path: String,
    /// The generator that fills each create's data, when it is random.
    random: Option<Rng>,
}

impl CountedCreate {
    /// A source for one worker; every worker of the run shares `next`.
    pub fn new(prefix: Arc<str>, next: Arc<AtomicU64>, count: u64, data: &[u8]) -> Self {
        CountedCreate {
            prefix,
            next,
            count,
            create: PathRequest::create(data),
            path: String::new(),
            random: None,
        }
    }

    /// The same source, each create's data overwritten with random bytes of its own
    /// (seeded from the clock: only incompressibility matters, not quality).
    pub fn with_random_data(mut self) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        self.random = Some(Rng::new(seed));
        self
    }
}

impl OpSource for CountedCreate {
    fn next(&mut self, _session: usize, xid: i32, out: &mut Vec<u8>) -> Option<OpKind> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        if i >= self.count {
            return None;
        }
        self.path.clear();
        let _ = write!(self.path, "{}/n{}", self.prefix, i);
        let start = out.len();
        self.create.append(xid, &self.path, out);
        if let Some(rng) = &mut self.random {
            // Frame length, header (xid, type), path (length and bytes), data length.
            let data_at = start + 4 + 8 + 4 + self.path.len() + 4;
            let data_len = self.create.data_len();
            for chunk in out[data_at..data_at + data_len].chunks_mut(8) {
                chunk.copy_from_slice(&rng.next_u64().to_le_bytes()[..chunk.len()]);
            }
        }
        Some(OpKind::Create)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrokeeper_net::request::CreateOp;

    fn decode(frame: &[u8]) -> (RequestHeader, Request) {
        let (header, request) = Request::decode(&frame[4..]).expect("header");
        (header, request.expect("body"))
    }

    #[test]
    fn template_stamps_the_xid_and_nothing_else() {
        let req = Request::GetData(GetDataRequest {
            path: "/bench/data/n7".into(),
            watch: false,
        });
        let mut want = Vec::new();
        req.encode_frame(1234, &mut want);
        let mut got = vec![9, 9];
        Template::new(&req).append(1234, &mut got);
        assert_eq!(&got[2..], &want[..]);
    }

    #[test]
    fn path_request_matches_the_full_encoder() {
        let data = b"hello".to_vec();
        let path = "/bench/cd/x-s3".to_string();
        let mut got = Vec::new();
        PathRequest::create(&data).append(77, &path, &mut got);
        let (header, request) = decode(&got);
        assert_eq!(header.xid, 77);
        let want = Request::Create(CreateOp {
            opcode: Some(OpCode::Create),
            path: path.clone(),
            data: NullableBuffer(Some(data)),
            acl: open_acl(),
            flags: 0,
            ttl: -1,
        });
        assert_eq!(request, want);

        let mut got = Vec::new();
        PathRequest::delete().append(78, &path, &mut got);
        let (_, request) = decode(&got);
        assert_eq!(
            request,
            Request::Delete(DeleteRequest { path, version: -1 })
        );
    }

    #[test]
    fn create_delete_alternates_per_session() {
        let mut s = CreateDelete::new("/p".into(), b"");
        let mut out = Vec::new();
        assert_eq!(s.next(0, 1, &mut out), Some(OpKind::Create));
        assert_eq!(s.next(1, 1, &mut out), Some(OpKind::Create));
        assert_eq!(s.next(0, 2, &mut out), Some(OpKind::Delete));
        assert_eq!(s.next(0, 3, &mut out), Some(OpKind::Create));
    }

    #[test]
    fn counted_create_stops_at_count() {
        let next = Arc::new(AtomicU64::new(0));
        let mut s = CountedCreate::new("/l".into(), next, 2, b"x");
        let mut out = Vec::new();
        assert!(s.next(0, 1, &mut out).is_some());
        assert!(s.next(0, 2, &mut out).is_some());
        assert!(s.next(0, 3, &mut out).is_none());
    }

    #[test]
    fn counted_create_with_random_data_changes_only_the_data() {
        let data = vec![b'a'; 100];
        let next = Arc::new(AtomicU64::new(0));
        let mut s = CountedCreate::new("/l".into(), next, 2, &data).with_random_data();
        let mut datas = Vec::new();
        for xid in [1, 2] {
            let mut out = Vec::new();
            assert!(s.next(0, xid, &mut out).is_some());
            let (header, request) = decode(&out);
            assert_eq!(header.xid, xid);
            let Request::Create(c) = request else {
                panic!("not a create: {request:?}")
            };
            assert_eq!(c.path, format!("/l/n{}", xid - 1));
            assert_eq!((c.flags, c.acl.len()), (0, 1));
            let d = c.data.0.expect("data");
            assert_eq!(d.len(), 100);
            assert_ne!(d, data);
            datas.push(d);
        }
        assert_ne!(datas[0], datas[1]);
    }

    #[test]
    fn rng_below_stays_in_range() {
        let mut r = Rng::new(1);
        assert!((0..10_000).all(|_| r.below(7) < 7));
    }
}
