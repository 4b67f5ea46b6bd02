//! Liveness of glommio's cross-executor wakeups as the workspace patches them
//! (net/vendor/glommio/FERROKEEPER-PATCH.md): a parking executor issues a SeqCst fence
//! instead of `membarrier()`, the producer's `SleepNotifier::notify` issues the other
//! fence, and a shared channel's receiver wakes the sender's executor only when it popped
//! from a full buffer. A lost wakeup leaves an executor asleep with work waiting for it,
//! which shows up here as a run that never ends.
//!
//! Two executors exchange messages over a pair of `shared_channel`s of capacity 2 (the
//! smallest the queue keeps apart from 1, where every pop is from a full buffer), in both
//! directions at once, in three phases per configuration:
//!
//! * pipelined: one task streams numbers to the other executor, which echoes each back;
//!   each side's receiving task naps now and then, so the other side's sender finds the
//!   buffer full, waits for room and parks, and must be woken by a pop from a full buffer;
//! * ping-pong: one message in flight, so both executors park between every hop (the
//!   fence handshake of the sleeper against `notify`);
//! * foreign wakes: a plain thread completes wakers of tasks on the executors
//!   (`queue_waker`) while they park.
//!
//! The configurations are glommio's default preemption timer and a 50 µs one (as
//! `tests/start_hang.rs` uses), which changes how often the run loop polls and parks.
//! Order is checked on every message. A watchdog fails the test if a configuration has
//! not finished after `WATCHDOG`; that is a liveness check (a lost wakeup never ends), not
//! a timing assertion: the run takes seconds, the watchdog minutes.
//!
//! `FK_WAKEUP_MESSAGES` sets the pipelined messages per configuration (default 1,000,000).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use futures_lite::future;
use glommio::channels::shared_channel::{self, ConnectedReceiver, ConnectedSender};
use glommio::{LocalExecutorBuilder, Placement};

/// A lost wakeup never ends; this is minutes past the slowest run seen here.
const WATCHDOG: Duration = Duration::from_secs(600);

/// Capacity of each channel (the queue rounds it to a power of two).
const CAPACITY: usize = 2;

/// Round trips of the one-in-flight phase.
const PING_PONGS: u64 = 100_000;

/// Wakes from the plain thread in the foreign-wake phase.
const FOREIGN_WAKES: u64 = 20_000;

/// A receiving task naps once every this many messages (primes, so the two sides' naps
/// drift against each other).
const NAP_EVERY_A: u64 = 997;
const NAP_EVERY_B: u64 = 1_009;

/// A nap: long enough for the other side to fill the buffer and park.
const NAP: Duration = Duration::from_micros(100);

/// Progress counters, printed when the watchdog fires so a hang says where it stopped.
#[derive(Default)]
struct Progress {
    sent: AtomicU64,
    echoed: AtomicU64,
    received: AtomicU64,
    ping_pongs: AtomicU64,
    foreign: AtomicU64,
}

impl Progress {
    fn describe(&self) -> String {
        format!(
            "sent {}, echoed {}, received back {}, ping-pongs {}, foreign wakes {}",
            self.sent.load(Ordering::Relaxed),
            self.echoed.load(Ordering::Relaxed),
            self.received.load(Ordering::Relaxed),
            self.ping_pongs.load(Ordering::Relaxed),
            self.foreign.load(Ordering::Relaxed),
        )
    }
}

fn messages() -> u64 {
    std::env::var("FK_WAKEUP_MESSAGES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(250_000)
}

fn builder(name: &str, preempt: Option<Duration>) -> LocalExecutorBuilder {
    let b = LocalExecutorBuilder::new(Placement::Unbound).name(name);
    match preempt {
        Some(d) => b.preempt_timer(d),
        None => b,
    }
}

async fn nap() {
    glommio::timer::sleep(NAP).await;
}

/// Executor A: streams `n` numbers to B and checks they come back in order, then
/// ping-pongs; hanging up ends B's echo loop.
async fn side_a(
    to_b: ConnectedSender<u64>,
    from_b: ConnectedReceiver<u64>,
    n: u64,
    progress: Arc<Progress>,
) {
    let to_b = std::rc::Rc::new(to_b);
    let sender = glommio::spawn_local({
        let to_b = to_b.clone();
        let progress = progress.clone();
        async move {
            for i in 0..n {
                if to_b.send(i).await.is_err() {
                    panic!("B hung up at message {i}");
                }
                progress.sent.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    for i in 0..n {
        let got = from_b.recv().await;
        assert_eq!(got, Some(i), "echo out of order");
        progress.received.fetch_add(1, Ordering::Relaxed);
        if i.is_multiple_of(NAP_EVERY_A) {
            nap().await;
        }
    }
    sender.await;

    for i in 0..PING_PONGS {
        if to_b.send(n + i).await.is_err() {
            panic!("B hung up in ping-pong {i}");
        }
        assert_eq!(from_b.recv().await, Some(n + i), "pong out of order");
        progress.ping_pongs.fetch_add(1, Ordering::Relaxed);
    }
}

/// Executor B: echoes every message back until A hangs up.
async fn side_b(
    from_a: ConnectedReceiver<u64>,
    to_a: ConnectedSender<u64>,
    progress: Arc<Progress>,
) {
    let mut k = 0u64;
    while let Some(x) = from_a.recv().await {
        if to_a.send(x).await.is_err() {
            panic!("A hung up at message {x}");
        }
        progress.echoed.fetch_add(1, Ordering::Relaxed);
        k += 1;
        if k.is_multiple_of(NAP_EVERY_B) {
            nap().await;
        }
    }
}

/// One executor's tasks wait `FOREIGN_WAKES` times for a counter that a plain thread bumps
/// and then wakes them through their waker from outside the executor (glommio's
/// `queue_waker`), napping now and then so the executor parks in between.
async fn foreign_waits(shared: Arc<ForeignShared>, progress: Arc<Progress>) {
    shared.started.store(true, Ordering::Release);
    for i in 0..FOREIGN_WAKES {
        future::poll_fn(|cx| {
            if shared.done.load(Ordering::Acquire) > i {
                return std::task::Poll::Ready(());
            }
            *shared.waker.lock().unwrap_or_else(|e| e.into_inner()) = Some(cx.waker().clone());
            if shared.done.load(Ordering::Acquire) > i {
                return std::task::Poll::Ready(());
            }
            std::task::Poll::Pending
        })
        .await;
        progress.foreign.fetch_add(1, Ordering::Relaxed);
        shared.acked.store(i + 1, Ordering::Release);
    }
}

#[derive(Default)]
struct ForeignShared {
    started: AtomicBool,
    done: AtomicU64,
    acked: AtomicU64,
    waker: std::sync::Mutex<Option<std::task::Waker>>,
}

/// The plain thread: once the executor's task has started, for each round, bumps `done`, wakes whatever waker is stored, and
/// waits (yielding the CPU) until the executor has seen it; every so often it sleeps so
/// the executor parks before the next wake.
fn foreign_waker_thread(shared: Arc<ForeignShared>) {
    while !shared.started.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(1));
    }
    for i in 0..FOREIGN_WAKES {
        if i.is_multiple_of(64) {
            std::thread::sleep(Duration::from_micros(200));
        }
        shared.done.store(i + 1, Ordering::Release);
        if let Some(w) = shared
            .waker
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            w.wake();
        }
        while shared.acked.load(Ordering::Acquire) <= i {
            std::thread::yield_now();
        }
    }
}

/// Runs the three phases with the given preemption timer; panics on a wrong message or
/// when the watchdog fires.
fn run(preempt: Option<Duration>) {
    let n = messages();
    let progress = Arc::new(Progress::default());
    let (a_tx, b_rx) = shared_channel::new_bounded::<u64>(CAPACITY);
    let (b_tx, a_rx) = shared_channel::new_bounded::<u64>(CAPACITY);
    let foreign = Arc::new(ForeignShared::default());

    let pa = progress.clone();
    let a = builder("wake-a", preempt)
        .spawn(move || async move {
            let to_b = a_tx.connect().await;
            let from_b = a_rx.connect().await;
            side_a(to_b, from_b, n, pa).await;
        })
        .expect("spawn executor A");
    let pb = progress.clone();
    let fb = foreign.clone();
    let b = builder("wake-b", preempt)
        .spawn(move || async move {
            let from_a = b_rx.connect().await;
            let to_a = b_tx.connect().await;
            side_b(from_a, to_a, pb.clone()).await;
            foreign_waits(fb, pb).await;
        })
        .expect("spawn executor B");
    let fw = foreign.clone();
    let waker_thread = std::thread::spawn(move || foreign_waker_thread(fw));

    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let ra = a.join();
        let rb = b.join();
        let rw = waker_thread.join();
        let _ = done_tx.send((ra.is_ok(), rb.is_ok(), rw.is_ok()));
    });
    match done_rx.recv_timeout(WATCHDOG) {
        Ok((true, true, true)) => {}
        Ok(r) => panic!(
            "a side failed (A, B, waker thread ok: {r:?}); {}",
            progress.describe()
        ),
        Err(_) => panic!(
            "no progress for {WATCHDOG:?} with preemption timer {preempt:?}: a lost wakeup; {}",
            progress.describe()
        ),
    }
    assert_eq!(progress.received.load(Ordering::Relaxed), n);
    assert_eq!(progress.ping_pongs.load(Ordering::Relaxed), PING_PONGS);
    assert_eq!(progress.foreign.load(Ordering::Relaxed), FOREIGN_WAKES);
}

#[test]
fn ping_pong_between_executors_never_loses_a_wakeup() {
    run(None);
    run(Some(Duration::from_micros(50)));
}

/// Round trips of the `send_lazy` phase where the receiver declares interest.
const LAZY_ROUND_TRIPS: u64 = 50_000;

/// Round trips of the `send_lazy` phase where only the receiver's timer wakes it (each
/// waits up to one tick).
const LAZY_TICKED: u64 = 5_000;

/// `ConnectedSender::send_lazy` (the commit stage's completions to shards without
/// watches, `commit::stage::publish`): the receiver declares interest before it waits and
/// withdraws it after each message, at a varying distance from the sender's next push, so
/// the sender's look at the flag races the receiver's last look before it sleeps. Nothing
/// else wakes the receiver in the first phase: a missed handshake hangs it, which the
/// watchdog reports. In the second phase the receiver never declares interest and a timer
/// of its own executor is what wakes it: every message still arrives, in order.
fn run_lazy(preempt: Option<Duration>) {
    let (a_tx, b_rx) = shared_channel::new_bounded::<u64>(64);
    let (b_tx, a_rx) = shared_channel::new_bounded::<u64>(CAPACITY);
    let interested = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(AtomicU64::new(0));

    let flag = interested.clone();
    let a = builder("lazy-a", preempt)
        .spawn(move || async move {
            let to_b = a_tx.connect().await;
            let from_b = a_rx.connect().await;
            for i in 0..LAZY_ROUND_TRIPS + LAZY_TICKED {
                let wake = |_queued: usize| flag.load(Ordering::Relaxed);
                if to_b.send_lazy(i, wake).await.is_err() {
                    panic!("B hung up at message {i}");
                }
                assert_eq!(from_b.recv().await, Some(i), "echo out of order");
            }
        })
        .expect("spawn executor A");
    let (flag, seen) = (interested.clone(), progress.clone());
    let b = builder("lazy-b", preempt)
        .spawn(move || async move {
            let from_a = b_rx.connect().await;
            let to_a = b_tx.connect().await;
            for i in 0..LAZY_ROUND_TRIPS {
                flag.store(true, Ordering::SeqCst);
                assert_eq!(from_a.recv().await, Some(i), "lazy message out of order");
                flag.store(false, Ordering::SeqCst);
                seen.fetch_add(1, Ordering::Relaxed);
                if to_a.send(i).await.is_err() {
                    panic!("A hung up at message {i}");
                }
                // A varying pause before the next declaration of interest: sometimes
                // A's next push comes first, sometimes the declaration does.
                for _ in 0..(i % 7) * 50 {
                    std::hint::spin_loop();
                }
            }
            let ticking = Arc::new(AtomicBool::new(true));
            let ticker = glommio::spawn_local({
                let ticking = ticking.clone();
                async move {
                    while ticking.load(Ordering::Relaxed) {
                        glommio::timer::sleep(Duration::from_micros(200)).await;
                    }
                }
            });
            for i in LAZY_ROUND_TRIPS..LAZY_ROUND_TRIPS + LAZY_TICKED {
                assert_eq!(from_a.recv().await, Some(i), "lazy message out of order");
                seen.fetch_add(1, Ordering::Relaxed);
                if to_a.send(i).await.is_err() {
                    panic!("A hung up at message {i}");
                }
            }
            ticking.store(false, Ordering::Relaxed);
            ticker.await;
        })
        .expect("spawn executor B");

    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let ra = a.join();
        let rb = b.join();
        let _ = done_tx.send((ra.is_ok(), rb.is_ok()));
    });
    match done_rx.recv_timeout(WATCHDOG) {
        Ok((true, true)) => {}
        Ok(r) => panic!(
            "a side failed (A, B ok: {r:?}) after {} messages",
            progress.load(Ordering::Relaxed)
        ),
        Err(_) => panic!(
            "no progress for {WATCHDOG:?} with preemption timer {preempt:?} after {} lazy messages: a lost wakeup",
            progress.load(Ordering::Relaxed)
        ),
    }
    assert_eq!(
        progress.load(Ordering::Relaxed),
        LAZY_ROUND_TRIPS + LAZY_TICKED
    );
}

#[test]
fn lazy_sends_never_strand_a_receiver_that_declared_interest() {
    run_lazy(None);
    run_lazy(Some(Duration::from_micros(50)));
}
