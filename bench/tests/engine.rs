//! The load generator against a fake server on loopback: a thread that completes the
//! handshake and answers every request with success, in order, as ZooKeeper does — or
//! stops answering, to show a stall is reported. No real server is needed.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use ferrokeeper_bench::engine::{run_pipeline, Pace, PipelineSpec, Span};
use ferrokeeper_bench::ops::{CountedCreate, Mix, MixClass, OpKind, OpSource, Template};
use ferrokeeper_net::frame::{check_frame, write_reply};
use ferrokeeper_net::records::{ConnectResponse, GetDataRequest, RequestHeader};
use ferrokeeper_net::request::Request;
use ferrokeeper_net::response::encode_connect_response;
use ferrokeeper_net::{Buffer, Decode};

/// A fake server: answers `answer_max` requests per connection at most (then goes silent).
struct Fake {
    addr: SocketAddr,
    requests: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Fake {
    fn start(answer_max: u64) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let requests = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, st) = (Arc::clone(&requests), Arc::clone(&stop));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(conn) = conn else { return };
                let r = Arc::clone(&r);
                std::thread::spawn(move || serve(conn, r, answer_max));
            }
        });
        Fake {
            addr,
            requests,
            stop,
        }
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(mut conn: TcpStream, requests: Arc<AtomicU64>, answer_max: u64) {
    let _ = conn.set_nodelay(true);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    let mut handshaken = false;
    let mut answered = 0u64;
    let mut session = 0x1000 + requests.load(Ordering::Relaxed) as i64;
    loop {
        let mut out = Vec::new();
        while let Ok(Some(len)) = check_frame(&buf, 1 << 20) {
            let payload = buf[4..4 + len].to_vec();
            buf.drain(..4 + len);
            if !handshaken {
                handshaken = true;
                session += 1;
                let resp = ConnectResponse {
                    protocol_version: 0,
                    time_out: 30_000,
                    session_id: session,
                    passwd: Buffer(vec![0; 16]),
                };
                encode_connect_response(&resp, Some(false), &mut out);
                continue;
            }
            let header = RequestHeader::from_bytes(&payload[..8]).expect("request header");
            // closeSession (-11) ends every run; it is not one of the workload's requests.
            if header.r#type != -11 {
                requests.fetch_add(1, Ordering::Relaxed);
            }
            if answered < answer_max {
                answered += 1;
                write_reply(&mut out, header.xid, 1, 0, None);
            }
        }
        if !out.is_empty() && conn.write_all(&out).is_err() {
            return;
        }
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn spec(addr: SocketAddr, pace: Pace, span: Span) -> PipelineSpec {
    PipelineSpec {
        addr,
        sessions: 4,
        outstanding: 4,
        threads: 2,
        pace,
        span,
        session_timeout_ms: 30_000,
        drain_ns: 500_000_000,
        server_pid: None,
        peers: Vec::new(),
        peer_pids: Vec::new(),
    }
}

fn reads() -> Arc<Vec<MixClass>> {
    let t = Template::new(&Request::GetData(GetDataRequest {
        path: "/x".into(),
        watch: false,
    }));
    Arc::new(vec![MixClass {
        per_mille: 1000,
        kind: OpKind::GetData,
        templates: Arc::new(vec![t]),
    }])
}

#[test]
fn closed_loop_counts_only_the_window() {
    let fake = Fake::start(u64::MAX);
    let mix = reads();
    let stats = run_pipeline(
        &spec(
            fake.addr,
            Pace::Closed,
            Span::Timed {
                warmup_ns: 100_000_000,
                measure_ns: 300_000_000,
            },
        ),
        &|w| Box::new(Mix::new(Arc::clone(&mix), w as u64)) as Box<dyn OpSource>,
    )
    .expect("run");
    assert_eq!(stats.errors, 0, "{:?}", stats.first_error);
    assert!(stats.ops > 0);
    assert_eq!(stats.latency.len(), stats.ops);
    assert!(
        fake.requests.load(Ordering::Relaxed) > stats.ops,
        "warm-up requests are sent but not counted"
    );
    assert_eq!(stats.window_ns, 300_000_000);
}

#[test]
fn fixed_rate_sends_at_the_rate() {
    let fake = Fake::start(u64::MAX);
    let mix = reads();
    let stats = run_pipeline(
        &spec(
            fake.addr,
            Pace::Rate {
                ops_per_sec: 2_000.0,
            },
            Span::Timed {
                warmup_ns: 100_000_000,
                measure_ns: 500_000_000,
            },
        ),
        &|w| Box::new(Mix::new(Arc::clone(&mix), w as u64)) as Box<dyn OpSource>,
    )
    .expect("run");
    assert_eq!(stats.errors, 0, "{:?}", stats.first_error);
    // 1000 requests are due in the window; allow for a slow, shared machine.
    assert!(
        (700..=1100).contains(&stats.ops),
        "{} ops at 2000/s over 0.5 s",
        stats.ops
    );
    assert!(!stats.send_lag.is_empty());
}

#[test]
fn counted_run_sends_exactly_the_count() {
    let fake = Fake::start(u64::MAX);
    let next = Arc::new(AtomicU64::new(0));
    let stats = run_pipeline(&spec(fake.addr, Pace::Closed, Span::Count), &|_| {
        Box::new(CountedCreate::new(
            "/l".into(),
            Arc::clone(&next),
            1_234,
            b"d",
        )) as Box<dyn OpSource>
    })
    .expect("run");
    assert_eq!(stats.errors, 0, "{:?}", stats.first_error);
    assert_eq!(stats.ops, 1_234);
    assert_eq!(fake.requests.load(Ordering::Relaxed), 1_234);
}

#[test]
fn a_server_that_stops_answering_is_a_reported_stall() {
    let fake = Fake::start(10);
    let mix = reads();
    let stats = run_pipeline(
        &spec(
            fake.addr,
            Pace::Closed,
            Span::Timed {
                warmup_ns: 0,
                measure_ns: 200_000_000,
            },
        ),
        &|w| Box::new(Mix::new(Arc::clone(&mix), w as u64)) as Box<dyn OpSource>,
    )
    .expect("run");
    // 4 sessions × 4 outstanding, each session answered 10 times: 16 left hanging.
    assert_eq!(stats.unanswered, 16);
    assert!(stats.errors > 0);
    assert!(stats.first_error.unwrap_or_default().contains("unanswered"));
}

#[test]
fn sessions_spread_over_an_ensembles_members_and_cpu_sums_their_pids() {
    let (a, b, c) = (
        Fake::start(u64::MAX),
        Fake::start(u64::MAX),
        Fake::start(u64::MAX),
    );
    let mut spec = spec(
        a.addr,
        Pace::Closed,
        Span::Timed {
            warmup_ns: 50_000_000,
            measure_ns: 200_000_000,
        },
    );
    spec.sessions = 6;
    spec.peers = vec![b.addr, c.addr];
    // This test process stands in for every member: the sum is then three readings of it.
    let me = std::process::id();
    spec.server_pid = Some(me);
    spec.peer_pids = vec![me, me];
    let mix = reads();
    let stats = run_pipeline(&spec, &|w| {
        Box::new(Mix::new(Arc::clone(&mix), 1 + w as u64)) as Box<dyn OpSource>
    })
    .expect("run");
    assert_eq!(stats.errors, 0, "{:?}", stats.first_error);
    for (name, fake) in [("a", &a), ("b", &b), ("c", &c)] {
        assert!(
            fake.requests.load(Ordering::Relaxed) > 0,
            "member {name} got no requests"
        );
    }
    assert!(stats.server_cpu_ns.is_some());
}
