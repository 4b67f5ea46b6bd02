use std::sync::Arc;

use ferrokeeper_net::codes::{ErrorCode, OpCode};
use ferrokeeper_net::records::{ConnectRequest, SetDataRequest, Stat};
use ferrokeeper_net::request::{Connect, Request};

use super::*;
use crate::core::txn::TxnOp;

fn stat(n: i64) -> Stat {
    Stat {
        czxid: n,
        mzxid: n + 1,
        ctime: n + 2,
        mtime: n + 3,
        version: 4,
        cversion: 5,
        aversion: 6,
        ephemeral_owner: n + 7,
        data_length: 8,
        num_children: 9,
        pzxid: n + 10,
    }
}

#[test]
fn an_entry_round_trips() {
    let txns = vec![
        Txn {
            zxid: 7,
            time_ms: 1000,
            session_id: 0x55,
            cxid: 3,
            op: TxnOp::Delete { path: "/a".into() },
        },
        Txn {
            zxid: 8,
            time_ms: 1001,
            session_id: 0x56,
            cxid: 0,
            op: TxnOp::CloseSession { session_id: 0x56 },
        },
    ];
    let replies = vec![
        (
            Origin(2 << 56 | 9),
            ReplyMsg::Connected {
                session_id: 0x56,
                timeout_ms: 4000,
                passwd: [7; 16],
                valid: true,
                read_only: false,
            },
        ),
        (
            Origin(3 << 56 | 1),
            ReplyMsg::Write {
                xid: 3,
                zxid: 7,
                opcode: OpCode::Multi,
                outcome: Outcome::Multi(vec![
                    Outcome::Created {
                        path: Arc::from("/x"),
                        stat: stat(10),
                    },
                    Outcome::CreatedPlain(Arc::from("/y")),
                    Outcome::Error(ErrorCode::NoNode),
                    Outcome::DataSet(stat(20)),
                ]),
            },
        ),
        (
            Origin(3 << 56 | 2),
            ReplyMsg::Write {
                xid: 4,
                zxid: 8,
                opcode: OpCode::Sync,
                outcome: Outcome::Synced(Arc::from("/")),
            },
        ),
        (
            Origin(3 << 56 | 2),
            ReplyMsg::Close {
                reason: "session expired",
            },
        ),
    ];
    let mut buf = Vec::new();
    encode_entry(&txns, &replies, &mut buf);
    let e = decode_entry(&buf).expect("decodes");
    assert_eq!(e.txns.len(), 2);
    assert_eq!(format!("{:?}", e.txns), format!("{txns:?}"));
    assert_eq!(format!("{:?}", e.replies), format!("{replies:?}"));
    // Every truncation is an error, never a panic.
    for n in 0..buf.len() {
        assert!(decode_entry(&buf[..n]).is_err(), "prefix {n} decoded");
    }
    buf.push(0);
    assert_eq!(decode_entry(&buf).err(), Some(WireError::Trailing(1)));
}

#[test]
fn forwarded_requests_round_trip() {
    let mut auth = AuthIds::from_ip_id("127.0.0.1".into());
    auth.add(Id {
        scheme: "digest".into(),
        id: "u:x".into(),
    });
    let msgs = vec![
        CommitRequest::Connect {
            conn: Origin(2 << 56 | 5),
            connect: Connect {
                request: ConnectRequest {
                    protocol_version: 0,
                    last_zxid_seen: 9,
                    time_out: 30000,
                    session_id: 0,
                    passwd: ferrokeeper_net::jute::Buffer(vec![0; 16]),
                },
                read_only: false,
                has_read_only: true,
            },
        },
        CommitRequest::Write {
            conn: Origin(2 << 56 | 5),
            session_id: 0x77,
            xid: 12,
            request: Request::SetData(SetDataRequest {
                path: "/a".into(),
                data: b"v".to_vec().into(),
                version: -1,
            }),
            auth: Arc::new(auth),
            local: true,
        },
        CommitRequest::ConnClosed {
            conn: Origin(2 << 56 | 5),
            session_id: 0x77,
        },
        CommitRequest::Touch(vec![1, 2, 3]),
        CommitRequest::UpgradeSession {
            conn: Origin(2 << 56 | 6),
            session_id: 0x78,
            timeout_ms: 6000,
            passwd: [9; 16],
        },
    ];
    let mut buf = Vec::new();
    encode_forward(&msgs, &mut buf);
    let back = decode_forward(&buf).expect("decodes");
    assert_eq!(format!("{back:?}"), format!("{msgs:?}"));
    for n in 0..buf.len() {
        assert!(decode_forward(&buf[..n]).is_err(), "prefix {n} decoded");
    }
}

#[test]
fn arbitrary_bytes_never_panic() {
    let mut rng = crate::core::sequencer::SeededEntropy(5);
    for len in 0..400 {
        let mut b = vec![0u8; len % 64];
        crate::core::sequencer::Entropy::fill(&mut rng, &mut b);
        if let Some(first) = b.first_mut() {
            *first = 1;
        }
        let _ = decode_entry(&b);
        let _ = decode_forward(&b);
    }
}
