//! The transport over loopback TCP, each server a `PeerNet` on a glommio executor.
//!
//! No assertion depends on timing: tests wait for a condition (polling it) or for a
//! count of frames, and fault rates are checked within loose bounds.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ferrokeeper_net::peer::{encode_frame, Handshake, MAGIC};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::channels::local_channel::LocalReceiver;
use glommio::net::TcpStream;
use glommio::{LocalExecutorBuilder, Placement};

use super::*;

const KIND: u8 = 7;
const MAX_FRAME: usize = 1 << 20;

/// A loopback address no one listens on now (the port was free a moment ago).
fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    l.local_addr().expect("local addr")
}

fn addrs(ids: Range<u64>) -> BTreeMap<u64, SocketAddr> {
    ids.map(|id| (id, free_addr())).collect()
}

fn config(me: u64, addrs: &BTreeMap<u64, SocketAddr>, faults: Faults) -> PeerConfig {
    PeerConfig {
        my_id: me,
        listen: vec![addrs[&me]],
        peers: addrs.iter().map(|(id, a)| (*id, vec![*a])).collect(),
        faults,
        max_frame: MAX_FRAME,
        ordered_kinds: Vec::new(),
    }
}

/// Runs `f` on a fresh glommio executor thread and returns its result.
fn on_executor<T, F>(name: &str, f: impl FnOnce() -> F + Send + 'static) -> T
where
    T: Send + 'static,
    F: std::future::Future<Output = T> + 'static,
{
    LocalExecutorBuilder::new(Placement::Unbound)
        .name(name)
        .spawn(f)
        .expect("spawn an executor")
        .join()
        .expect("the executor's future completes")
}

/// Starts a transport, retrying while its port is still held: a server shut down on this
/// executor closes its listener only when the executor next drops its cancelled tasks.
async fn start(cfg: PeerConfig) -> (PeerNet, LocalReceiver<Incoming>) {
    for _ in 0..1000 {
        match PeerNet::start(cfg.clone()).await {
            Ok(started) => return started,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                glommio::timer::sleep(Duration::from_millis(5)).await
            }
            Err(e) => panic!("start {}: {e}", cfg.my_id),
        }
    }
    panic!("port {:?} stayed in use", cfg.listen);
}

/// Polls `cond` until it holds.
async fn until(cond: impl Fn() -> bool) {
    while !cond() {
        glommio::timer::sleep(Duration::from_millis(5)).await;
    }
}

/// A payload naming its sender and sequence number, padded to vary the frame size.
fn payload(from: u64, seq: u64) -> Vec<u8> {
    let mut p = Vec::with_capacity(16 + 64);
    p.extend_from_slice(&from.to_le_bytes());
    p.extend_from_slice(&seq.to_le_bytes());
    p.resize(16 + (seq % 64) as usize, 0xa5);
    p
}

/// The sender and sequence number of a payload made by [`payload`].
fn parse(p: &[u8]) -> (u64, u64) {
    let from = u64::from_le_bytes(p[0..8].try_into().expect("8 bytes"));
    let seq = u64::from_le_bytes(p[8..16].try_into().expect("8 bytes"));
    assert_eq!(p.len(), 16 + (seq % 64) as usize, "payload length");
    (from, seq)
}

/// Receives frames and checks they are exactly `seqs` from `from`, in order.
async fn expect_seqs(rx: &LocalReceiver<Incoming>, from: u64, seqs: Range<u64>) {
    for want in seqs {
        let m = rx.recv().await.expect("the transport is running");
        assert_eq!((m.from, m.kind), (from, KIND));
        assert_eq!(parse(&m.payload), (from, want));
    }
}

/// Three servers, each on its own executor thread, send thousands of frames to each
/// other; every receiver sees each sender's frames complete and in order.
#[test]
fn peer_three_servers_exchange_thousands_of_frames_in_order() {
    const FRAMES: u64 = 5000;
    let addrs = addrs(1..4);
    let done = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (1..4u64)
        .map(|me| {
            let addrs = addrs.clone();
            let done = done.clone();
            LocalExecutorBuilder::new(Placement::Unbound)
                .name(&format!("peer-{me}"))
                .spawn(move || async move {
                    let (net, rx) = start(config(me, &addrs, Faults::none())).await;
                    let others: Vec<u64> = addrs.keys().copied().filter(|id| *id != me).collect();
                    let sender = {
                        let net = net.clone();
                        let others = others.clone();
                        glommio::spawn_local(async move {
                            for seq in 0..FRAMES {
                                for to in &others {
                                    net.send(*to, KIND, payload(me, seq));
                                }
                                // Some frames go out while others are still being queued.
                                if seq % 500 == 0 {
                                    glommio::timer::sleep(Duration::from_millis(1)).await;
                                }
                            }
                        })
                    };
                    let mut next: BTreeMap<u64, u64> = others.iter().map(|id| (*id, 0)).collect();
                    for _ in 0..FRAMES * others.len() as u64 {
                        let m = rx.recv().await.expect("the transport is running");
                        let (from, seq) = parse(&m.payload);
                        assert_eq!((m.from, m.kind), (from, KIND));
                        let want = next.get_mut(&from).expect("a known sender");
                        assert_eq!(seq, *want, "server {me}: frames from {from} out of order");
                        *want += 1;
                    }
                    sender.await;
                    // Keep serving until every server has everything it was sent.
                    done.fetch_add(1, Ordering::SeqCst);
                    let all = FRAMES * others.len() as u64;
                    until(|| done.load(Ordering::SeqCst) == 3 && net.stats().frames_sent == all)
                        .await;
                    let stats = net.stats();
                    net.shutdown();
                    stats
                })
                .expect("spawn an executor")
        })
        .collect();
    for t in threads {
        let stats = t.join().expect("a server's executor");
        assert_eq!(stats.frames_received, 2 * FRAMES, "{stats:?}");
        assert_eq!(stats.frames_sent, 2 * FRAMES, "{stats:?}");
        assert_eq!(stats.dropped(), 0, "{stats:?}");
        assert_eq!(stats.connections_refused, 0, "{stats:?}");
    }
}

/// A server shut down and started again is redialled, gets the frames queued for it
/// meanwhile, and sends again itself.
#[test]
fn peer_a_restarted_server_is_reconnected_and_frames_flow_again() {
    let addrs = addrs(1..3);
    on_executor("peer-restart", move || async move {
        let (a, rx_a) = start(config(1, &addrs, Faults::none())).await;
        let (b, rx_b) = start(config(2, &addrs, Faults::none())).await;
        for seq in 0..100 {
            a.send(2, KIND, payload(1, seq));
        }
        expect_seqs(&rx_b, 1, 0..100).await;
        b.send(1, KIND, payload(2, 0));
        expect_seqs(&rx_a, 2, 0..1).await;

        b.shutdown();
        drop(rx_b);
        until(|| !a.connected(2)).await;
        // The connection b sent on ended by b's doing: a is told, once, after its frames.
        let lost = rx_a.recv().await.expect("the transport is running");
        assert_eq!((lost.from, lost.kind), (2, KIND_LOST));
        assert!(lost.payload.is_empty());
        // Queued while the peer is down, delivered after it is back.
        for seq in 100..200 {
            a.send(2, KIND, payload(1, seq));
        }
        let (b, rx_b) = start(config(2, &addrs, Faults::none())).await;
        expect_seqs(&rx_b, 1, 100..200).await;
        assert!(a.connected(2));
        assert!(a.stats().reconnects >= 1, "{:?}", a.stats());

        for seq in 1..50 {
            b.send(1, KIND, payload(2, seq));
        }
        expect_seqs(&rx_a, 2, 1..50).await;
        a.shutdown();
        b.shutdown();
    });
}

/// Opens a raw connection to `addr` and writes `bytes`.
async fn raw(addr: SocketAddr, bytes: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(bytes).await.expect("write");
    s
}

/// Waits until the server closes `s` (end of stream, or a reset when it closed with
/// bytes unread).
async fn assert_closed_by_server(s: &mut TcpStream) {
    let mut buf = [0u8; 16];
    match s.read(&mut buf).await {
        Ok(0) | Err(_) => {}
        Ok(n) => panic!("the acceptor wrote {n} bytes"),
    }
}

fn handshake(from: u64, to: u64) -> Vec<u8> {
    let mut out = Vec::new();
    Handshake::new(from, to).encode(&mut out);
    out
}

fn frame(p: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(&mut out, KIND, p);
    out
}

/// A peer that dials again replaces its earlier incoming connection: the earlier one is
/// closed and nothing more is read from it.
#[test]
fn peer_a_reconnecting_peer_replaces_its_earlier_connection() {
    let addrs = addrs(1..3);
    on_executor("peer-replace", move || async move {
        let (a, rx) = start(config(1, &addrs, Faults::none())).await;
        let mut first = raw(
            addrs[&1],
            &[handshake(2, 1), frame(&payload(2, 0))].concat(),
        )
        .await;
        expect_seqs(&rx, 2, 0..1).await;
        let mut second = raw(
            addrs[&1],
            &[handshake(2, 1), frame(&payload(2, 1))].concat(),
        )
        .await;
        expect_seqs(&rx, 2, 1..2).await;
        assert_closed_by_server(&mut first).await;
        // Whether or not this write reaches a socket, nothing from `first` is delivered.
        let _ = first.write_all(&frame(&payload(2, 99))).await;
        second
            .write_all(&frame(&payload(2, 2)))
            .await
            .expect("write");
        expect_seqs(&rx, 2, 2..3).await;
        assert_eq!(a.stats().frames_received, 3);
        a.shutdown();
    });
}

/// Refused handshakes, another version, garbage and an oversized frame each close their
/// own connection, are counted, and leave the real peer's connection alone.
#[test]
fn peer_bad_handshakes_and_oversized_frames_close_only_their_connection() {
    // Server 3 is configured but never started: a raw connection speaks for it.
    let addrs = addrs(1..4);
    on_executor("peer-refuse", move || async move {
        let (a, rx_a) = start(config(1, &addrs, Faults::none())).await;
        let (b, _rx_b) = start(config(2, &addrs, Faults::none())).await;
        for seq in 0..10 {
            b.send(1, KIND, payload(2, seq));
        }
        expect_seqs(&rx_a, 2, 0..10).await;

        let mut other_version = MAGIC.to_vec();
        other_version.extend_from_slice(&2u32.to_le_bytes());
        other_version.extend_from_slice(&[0; 16]);
        let refused: [Vec<u8>; 4] = [
            b"GET / HTTP/1.0\r\n\r\n".to_vec(),
            handshake(2, 9), // meant for another server
            handshake(8, 1), // not a configured peer
            other_version,
        ];
        for bytes in &refused {
            let mut s = raw(addrs[&1], bytes).await;
            assert_closed_by_server(&mut s).await;
        }
        // A valid frame, then a header announcing one byte more than the maximum.
        let mut oversized = [handshake(3, 1), frame(&payload(3, 0))].concat();
        oversized.extend_from_slice(&(MAX_FRAME as u32 + 1).to_le_bytes());
        oversized.push(KIND);
        let mut s = raw(addrs[&1], &oversized).await;
        expect_seqs(&rx_a, 3, 0..1).await;
        assert_closed_by_server(&mut s).await;
        // A frame of the transport's reserved kind: the peer cannot fake a lost connection.
        let mut reserved = handshake(3, 1);
        encode_frame(&mut reserved, KIND_LOST, &[]);
        let mut s = raw(addrs[&1], &reserved).await;
        assert_closed_by_server(&mut s).await;
        assert_eq!(a.stats().connections_refused, 6, "{:?}", a.stats());

        assert!(b.connected(1));
        for seq in 10..20 {
            b.send(1, KIND, payload(2, seq));
        }
        expect_seqs(&rx_a, 2, 10..20).await;
        assert_eq!(b.stats().reconnects, 0, "{:?}", b.stats());
        a.shutdown();
        b.shutdown();
    });
}

/// Frames for a peer that is down are kept up to the queue bound (the rest are dropped
/// and counted) and delivered in order once it comes up.
#[test]
fn peer_frames_queued_for_a_down_peer_are_kept_up_to_the_bound() {
    let addrs = addrs(1..3);
    on_executor("peer-queue", move || async move {
        let cfg = PeerConfig {
            max_frame: 64 << 10,
            ordered_kinds: Vec::new(),
            ..config(1, &addrs, Faults::none())
        };
        let frame_wire = frame_bytes(64 << 10);
        let kept = (cfg.queue_bytes_max() / frame_wire) as u64;
        let sent = kept + 40;
        let (a, _rx_a) = start(cfg).await;
        let big = |seq: u64| {
            let mut p = payload(1, seq);
            p.resize(64 << 10, (seq % 251) as u8);
            p
        };
        for seq in 0..sent {
            a.send(2, KIND, big(seq));
        }
        assert_eq!(a.stats().dropped_queue_full, sent - kept, "{:?}", a.stats());

        let (b, rx_b) = start(config(2, &addrs, Faults::none())).await;
        for seq in 0..kept {
            let m = rx_b.recv().await.expect("the transport is running");
            assert_eq!(m.payload, big(seq));
        }
        until(|| a.stats().frames_sent == kept).await;
        a.shutdown();
        b.shutdown();
    });
}

/// Dropped, duplicated and delayed frames happen at about the configured rates, and
/// every copy not dropped arrives.
#[test]
fn peer_faults_drop_duplicate_and_delay_within_loose_bounds() {
    const FRAMES: u64 = 4000;
    let addrs = addrs(1..3);
    on_executor("peer-faults", move || async move {
        let faults = Faults::parse("drop=0.1,dup=0.1,delay=0..3,seed=5").expect("faults");
        let (a, _rx_a) = start(config(1, &addrs, faults)).await;
        let (b, rx_b) = start(config(2, &addrs, Faults::none())).await;
        for seq in 0..FRAMES {
            a.send(2, KIND, payload(1, seq));
        }
        let s = a.stats();
        let copies = FRAMES - s.dropped_by_faults + s.duplicated_by_faults;
        let mut seen: BTreeMap<u64, u64> = BTreeMap::new();
        for _ in 0..copies {
            let m = rx_b.recv().await.expect("the transport is running");
            *seen.entry(parse(&m.payload).1).or_default() += 1;
        }
        until(|| a.stats().frames_sent == copies).await;

        let loose =
            |rate: f64, n: u64| (n as f64 * rate * 0.5) as u64..(n as f64 * rate * 1.5) as u64;
        assert!(loose(0.1, FRAMES).contains(&s.dropped_by_faults), "{s:?}");
        assert!(
            loose(0.1, FRAMES - s.dropped_by_faults).contains(&s.duplicated_by_faults),
            "{s:?}"
        );
        // Delays are drawn from 0..=3 ms: about three copies in four wait.
        assert!(loose(0.75, copies).contains(&s.delayed_by_faults), "{s:?}");
        assert_eq!(seen.len() as u64, FRAMES - s.dropped_by_faults);
        assert_eq!(
            seen.values().filter(|n| **n == 2).count() as u64,
            s.duplicated_by_faults
        );
        assert!(seen.values().all(|n| *n <= 2));
        a.shutdown();
        b.shutdown();
    });
}

/// Frames of an ordered kind are never duplicated or reordered by injected faults (they
/// may be dropped): what arrives is an increasing subsequence, each frame once.
#[test]
fn peer_ordered_kinds_are_dropped_at_most_never_duplicated_or_reordered() {
    const FRAMES: u64 = 2000;
    let addrs = addrs(1..3);
    on_executor("peer-ordered", move || async move {
        let faults = Faults::parse("drop=0.1,dup=0.5,delay=0..3,seed=9").expect("faults");
        let mut cfg = config(1, &addrs, faults);
        cfg.ordered_kinds = vec![KIND];
        let (a, _rx_a) = start(cfg).await;
        let (b, rx_b) = start(config(2, &addrs, Faults::none())).await;
        for seq in 0..FRAMES {
            a.send(2, KIND, payload(1, seq));
        }
        let s = a.stats();
        assert_eq!(s.duplicated_by_faults, 0, "{s:?}");
        let arriving = FRAMES - s.dropped_by_faults;
        let mut last = None;
        for _ in 0..arriving {
            let m = rx_b.recv().await.expect("the transport is running");
            let seq = parse(&m.payload).1;
            assert!(last.is_none_or(|l| seq > l), "{seq} after {last:?}");
            last = Some(seq);
        }
        a.shutdown();
        b.shutdown();
    });
}

/// A cut link drops frames (queued ones too) with its connection up; restoring it lets
/// frames flow again.
#[test]
fn peer_a_cut_link_drops_frames_until_restored() {
    let addrs = addrs(1..3);
    on_executor("peer-cut", move || async move {
        let (a, _rx_a) = start(config(1, &addrs, Faults::none())).await;
        a.set_cut(2, true);
        let (b, rx_b) = start(config(2, &addrs, Faults::none())).await;
        until(|| a.connected(2)).await;
        for seq in 0..100 {
            a.send(2, KIND, payload(1, seq));
        }
        assert_eq!(a.stats().dropped_by_faults, 100);
        assert!(a.connected(2), "a cut keeps the connection");
        a.set_cut(2, false);
        for seq in 100..150 {
            a.send(2, KIND, payload(1, seq));
        }
        expect_seqs(&rx_b, 1, 100..150).await;
        a.shutdown();
        b.shutdown();
    });
}

/// Frames to no configured peer (or to ourselves) and frames above the maximum are
/// dropped and counted; a frame of exactly the maximum goes through.
#[test]
fn peer_send_drops_unknown_peers_and_oversized_frames() {
    let addrs = addrs(1..3);
    on_executor("peer-send", move || async move {
        let small = |me| PeerConfig {
            max_frame: 100,
            ordered_kinds: Vec::new(),
            ..config(me, &addrs, Faults::none())
        };
        let (a, _rx_a) = start(small(1)).await;
        let (b, rx_b) = start(small(2)).await;
        a.send(9, KIND, vec![1]);
        a.send(1, KIND, vec![1]);
        a.send(2, KIND, vec![0; 101]);
        a.send(2, KIND, vec![3; 100]);
        let s = a.stats();
        assert_eq!(
            (s.dropped_unknown_peer, s.dropped_oversized),
            (2, 1),
            "{s:?}"
        );
        let m = rx_b.recv().await.expect("the transport is running");
        assert_eq!((m.from, m.kind, m.payload), (1, KIND, vec![3; 100]));
        a.shutdown();
        b.shutdown();
        assert!(!a.connected(2));
        // After shutdown, sending is a no-op and the receiver ends.
        a.send(2, KIND, vec![1]);
        assert_eq!(rx_b.recv().await, None);
    });
}

/// A stale address book: server 1 dials the address it has for server 2, where server 3
/// now listens. Server 3 refuses each handshake (it was meant for 2), and server 1 keeps
/// redialling, backing off, without delivering a frame.
#[test]
fn peer_a_handshake_meant_for_another_server_is_refused_on_every_redial() {
    let addrs = addrs(1..3);
    on_executor("peer-stale", move || async move {
        let (a, _rx_a) = start(config(1, &addrs, Faults::none())).await;
        let stale = BTreeMap::from([(1, addrs[&1]), (3, addrs[&2])]);
        let (c, _rx_c) = start(config(3, &stale, Faults::none())).await;
        a.send(2, KIND, payload(1, 0));
        until(|| c.stats().connections_refused >= 3).await;
        assert_eq!(c.stats().frames_received, 0);
        assert!(a.stats().reconnects >= 2, "{:?}", a.stats());
        a.shutdown();
        c.shutdown();
    });
}
