//! The settings ferrokeeper should run with on a host, and why.
//!
//! [`recommend`] is a pure function of a [`HostReport`]: no file, clock or system call. The
//! server can therefore compute the same defaults at start-up from
//! [`HostReport::gather`] (which does not probe the disk); in particular the default of
//! `ferrokeeper.shards` should be [`shards_for_cpus`] of the usable CPUs (see the crate
//! documentation for the wiring this needs).

use serde::Serialize;

use crate::host::HostReport;
use crate::probe::DiskReport;

/// With at least this many usable CPUs, one is left to the commit stage.
pub const DEDICATED_COMMIT_CORE_CPUS_MIN: usize = 4;

/// The server's built-in `ferrokeeper.commitBatchMax` (`src/config.rs`), used when the
/// disk was not measured.
pub const COMMIT_BATCH_MAX_DEFAULT: usize = 1024;
/// The smallest batch limit recommended: below it, a burst of writes needs more syncs
/// than the disk can do in the time the burst is allowed to take.
pub const COMMIT_BATCH_MAX_MIN: usize = 16;
/// The largest batch limit recommended: the server's default shard-to-commit queue
/// depth (`ferrokeeper.commitQueueDepth`, 4096); a bigger batch than one queue holds is
/// never assembled from one shard anyway.
pub const COMMIT_BATCH_MAX_MAX: usize = 4096;

/// ZooKeeper's `preAllocSize` default, in KiB (64 MiB), which is also ferrokeeper's
/// segment size default.
pub const PRE_ALLOC_SIZE_KB_DEFAULT: u64 = 64 * 1024;
/// The largest segment recommended, in KiB (1 GiB): the log format's offsets are u32
/// (`storage/FORMAT.md`), and a bigger segment only delays purging.
pub const PRE_ALLOC_SIZE_KB_MAX: u64 = 1024 * 1024;
/// The smallest segment recommended on a nearly full disk, in KiB (4 MiB).
pub const PRE_ALLOC_SIZE_KB_MIN: u64 = 4 * 1024;
/// A segment roll costs about three syncs (new file, its header, the directory) on the
/// commit path. Sizing a segment to last at least this long at the disk's peak append
/// rate keeps that below 0.1% of the syncs the disk can do.
pub const SEGMENT_ROLL_INTERVAL_SECONDS_MIN: f64 = 1.0;
/// A segment is at most this fraction of the free space: the retained segments
/// (`autopurge.snapRetainCount` snapshots' worth) and the snapshots need room too.
pub const PRE_ALLOC_FREE_SPACE_DIVISOR: u64 = 32;
/// Framing the log adds to each record (`storage/FORMAT.md`: 24-byte frame header).
pub const LOG_FRAME_BYTES: usize = 24;

/// ZooKeeper's default `maxClientCnxns`.
pub const MAX_CLIENT_CNXNS_DEFAULT: u64 = 60;
/// File descriptors kept for everything but client connections: log segments, snapshots,
/// one listener and a few io_uring and eventfd descriptors per shard, the admin server.
pub const FD_RESERVE: u64 = 256;

/// What the operator wants from the host. The rules turn these into settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Targets {
    /// The write latency to stay under at the server (p99, queueing + log), in
    /// microseconds. Default 5 ms: a write waits for at most the batch being synced and
    /// then its own, so this allows two batch cycles of 2.5 ms.
    pub write_latency_p99_us: f64,
    /// Client connections the host should be able to hold at once.
    pub expected_connections: u64,
    /// The commit stage's CPU time per request (prep, apply, encode), in microseconds.
    /// **Assumed, not measured** by the tuner (it runs no server code); replace it with the
    /// figure the bench measures for the commit stage.
    pub prep_us_per_request: f64,
}

impl Default for Targets {
    fn default() -> Self {
        Targets {
            write_latency_p99_us: 5_000.0,
            expected_connections: 10_000,
            prep_us_per_request: 5.0,
        }
    }
}

/// One recommended `zoo.cfg` setting.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Setting<T> {
    /// The `zoo.cfg` key.
    pub key: &'static str,
    /// The recommended value.
    pub value: T,
    /// Why, with the numbers it came from.
    pub reason: String,
}

/// The recommended settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recommendations {
    /// `ferrokeeper.shards`.
    pub shards: Setting<usize>,
    /// `ferrokeeper.commitBatchMax`.
    pub commit_batch_max: Setting<usize>,
    /// `preAllocSize`, in KiB.
    pub pre_alloc_size_kb: Setting<u64>,
    /// `maxClientCnxns`: connections per client IP address.
    pub max_client_cnxns: Setting<u64>,
    /// `maxCnxns`: connections in total; 0 = no limit.
    pub max_cnxns: Setting<u64>,
}

impl Recommendations {
    /// The settings as a `zoo.cfg` snippet, each preceded by its reason as a comment.
    pub fn zoo_cfg(&self) -> String {
        let mut out = String::from("# Recommended by ferrokeeper-tune for this host.\n");
        let mut line = |key: &str, value: String, reason: &str| {
            out.push_str(&format!("# {reason}\n{key}={value}\n"));
        };
        let s = &self.shards;
        line(s.key, s.value.to_string(), &s.reason);
        let s = &self.commit_batch_max;
        line(s.key, s.value.to_string(), &s.reason);
        let s = &self.pre_alloc_size_kb;
        line(s.key, s.value.to_string(), &s.reason);
        let s = &self.max_client_cnxns;
        line(s.key, s.value.to_string(), &s.reason);
        let s = &self.max_cnxns;
        line(s.key, s.value.to_string(), &s.reason);
        out
    }
}

/// The recommended settings for `host` with the default [`Targets`].
pub fn recommend(host: &HostReport) -> Recommendations {
    recommend_with(host, &Targets::default())
}

/// The recommended settings for `host` and `targets`.
pub fn recommend_with(host: &HostReport, targets: &Targets) -> Recommendations {
    let max_cnxns = max_cnxns(host);
    Recommendations {
        shards: shards(host.cpus.usable),
        commit_batch_max: commit_batch_max(host.disk.as_ref(), targets),
        pre_alloc_size_kb: pre_alloc_size_kb(host.disk.as_ref()),
        max_client_cnxns: max_client_cnxns(max_cnxns.value),
        max_cnxns,
    }
}

/// Thread-per-core shards for `cpus` usable CPUs: all but one when there are at least
/// [`DEDICATED_COMMIT_CORE_CPUS_MIN`], else all of them. Never 0.
pub fn shards_for_cpus(cpus: usize) -> usize {
    if cpus >= DEDICATED_COMMIT_CORE_CPUS_MIN {
        cpus - 1
    } else {
        cpus.max(1)
    }
}

fn shards(cpus: usize) -> Setting<usize> {
    let value = shards_for_cpus(cpus);
    let reason = if cpus >= DEDICATED_COMMIT_CORE_CPUS_MIN {
        format!(
            "{cpus} usable CPUs: one shard per core on {value} cores, the last core left to \
             the commit stage, the one thread every write passes through; sharing a core \
             with a shard would put that shard's reads in front of every write's prep and \
             sync completion"
        )
    } else {
        format!(
            "{cpus} usable CPU(s): one shard per core; below {DEDICATED_COMMIT_CORE_CPUS_MIN} \
             cores a core given to the commit stage alone would idle in fdatasync waits \
             while costing {}% of read capacity, so the commit stage runs on shard 0's \
             executor (`ferrokeeper.commitOnShard`), where shard 0's writes cross no thread",
            100 / cpus.max(1)
        )
    };
    Setting {
        key: "ferrokeeper.shards",
        value,
        reason,
    }
}

/// The largest power of two at most `x` (for `x >= 1`).
fn floor_pow2(x: usize) -> usize {
    debug_assert!(x >= 1);
    1 << (usize::BITS - 1 - x.leading_zeros())
}

/// The batch limit. A write waits at most for the batch being synced and then for its own
/// batch: two batch cycles. One cycle of `b` requests costs the sync (p99) plus `b` times
/// the per-request cost (commit-stage CPU, assumed, plus the disk's cost per extra record,
/// measured from the slope between batches of 1 and 256). The limit is the largest `b`
/// whose two cycles fit the latency target. When the sync alone is more than half the
/// target no limit can meet it; then a batch may take as long as the sync it shares, which
/// at most doubles the cycle while amortizing the sync over the most requests.
fn commit_batch_max(disk: Option<&DiskReport>, targets: &Targets) -> Setting<usize> {
    let key = "ferrokeeper.commitBatchMax";
    let fallback = |why: &str| Setting {
        key,
        value: COMMIT_BATCH_MAX_DEFAULT,
        reason: format!("{why}: the server's default {COMMIT_BATCH_MAX_DEFAULT}"),
    };
    let Some(disk) = disk else {
        return fallback("disk not probed");
    };
    if disk.in_memory {
        return fallback("data directory is in memory, so sync latency means nothing");
    }
    // The log writes into fallocated space today, so that is the sync it pays.
    let Some(sync) = &disk.sync_fallocated else {
        return fallback("sync latency not measured");
    };
    let first = disk.group_commit.iter().find(|g| g.batch_records == 1);
    let last = disk.group_commit.iter().max_by_key(|g| g.batch_records);
    let (Some(first), Some(last)) = (first, last) else {
        return fallback("group commit not measured");
    };
    if last.batch_records <= first.batch_records || sync.samples == 0 {
        return fallback("group commit not measured");
    }
    let disk_us_per_record = ((last.batch_p50_us - first.batch_p50_us)
        / (last.batch_records - first.batch_records) as f64)
        .max(0.0);
    let cost_us = (disk_us_per_record + targets.prep_us_per_request).max(0.01);
    let sync_us = sync.p99_us;
    let cycle_budget_us = targets.write_latency_p99_us / 2.0 - sync_us;
    let (raw, rule) = if cycle_budget_us > 0.0 {
        (
            cycle_budget_us / cost_us,
            format!(
                "two batch cycles fit {:.1} ms: (target/2 {:.0} µs - sync p99 {:.0} µs)",
                targets.write_latency_p99_us / 1000.0,
                targets.write_latency_p99_us / 2.0,
                sync_us
            ),
        )
    } else {
        (
            sync_us / cost_us,
            format!(
                "sync p99 {sync_us:.0} µs alone exceeds half the {:.1} ms target, so a batch \
                 may take as long as its sync: (sync p99 {sync_us:.0} µs",
                targets.write_latency_p99_us / 1000.0
            ),
        )
    };
    let clamped = (raw.floor() as usize).clamp(COMMIT_BATCH_MAX_MIN, COMMIT_BATCH_MAX_MAX);
    let value = floor_pow2(clamped);
    Setting {
        key,
        value,
        reason: format!(
            "{rule}) / {cost_us:.2} µs per request (disk {disk_us_per_record:.2} measured + \
             commit stage {:.1} assumed) = {raw:.0}, within [{COMMIT_BATCH_MAX_MIN}, \
             {COMMIT_BATCH_MAX_MAX}], rounded down to a power of two{}",
            targets.prep_us_per_request,
            busy_note(disk)
        ),
    }
}

/// Said after a value derived from a probe taken on a busy host.
fn busy_note(disk: &DiskReport) -> &'static str {
    if disk.measured_on_busy_host() {
        " (MEASURED ON A BUSY HOST: run the tuner again when the host is quiet)"
    } else {
        ""
    }
}

/// The segment size: long enough at the disk's peak append rate that a roll (three syncs)
/// comes at most once a second, at least ZooKeeper's 64 MiB, at most 1 GiB, and at most a
/// 32nd of the free space.
fn pre_alloc_size_kb(disk: Option<&DiskReport>) -> Setting<u64> {
    let key = "preAllocSize";
    let Some(disk) = disk else {
        return Setting {
            key,
            value: PRE_ALLOC_SIZE_KB_DEFAULT,
            reason: "disk not probed: ZooKeeper's default (64 MiB)".to_string(),
        };
    };
    let peak_bytes_per_second = disk
        .group_commit
        .iter()
        .map(|g| g.records_per_second * (g.record_bytes + LOG_FRAME_BYTES) as f64)
        .fold(0.0, f64::max);
    let mut reason;
    let mut kb = if disk.in_memory || peak_bytes_per_second <= 0.0 {
        reason = "append rate not measured: ZooKeeper's default (64 MiB)".to_string();
        PRE_ALLOC_SIZE_KB_DEFAULT
    } else {
        let want_kb = (peak_bytes_per_second * SEGMENT_ROLL_INTERVAL_SECONDS_MIN / 1024.0).ceil();
        let kb = (want_kb as u64)
            .next_power_of_two()
            .clamp(PRE_ALLOC_SIZE_KB_DEFAULT, PRE_ALLOC_SIZE_KB_MAX);
        reason = format!(
            "peak append rate {:.1} MB/s (records + {LOG_FRAME_BYTES}-byte frames): a segment \
             of {} MiB lasts {:.1} s, so a roll (about 3 syncs) comes at most once a second; \
             bounds 64 MiB..1 GiB{}",
            peak_bytes_per_second / 1e6,
            kb / 1024,
            (kb * 1024) as f64 / peak_bytes_per_second,
            busy_note(disk)
        );
        kb
    };
    if let Some(free) = disk.free_bytes {
        let cap_kb = free / 1024 / PRE_ALLOC_FREE_SPACE_DIVISOR;
        if kb > cap_kb {
            let mut smaller = kb;
            while smaller > cap_kb && smaller > PRE_ALLOC_SIZE_KB_MIN {
                smaller /= 2;
            }
            reason = format!(
                "{reason}; cut to {} MiB because only {} MiB are free (a segment is at most \
                 1/{PRE_ALLOC_FREE_SPACE_DIVISOR} of the free space, leaving room for retained \
                 segments and snapshots)",
                smaller / 1024,
                free / (1024 * 1024)
            );
            kb = smaller;
        }
    }
    if let Some(f) = &disk.fallocate {
        if !f.works {
            reason = format!(
                "{reason}; NOTE fallocate does not work here, so segments cannot be \
                 preallocated and each append may commit a size change"
            );
        }
    }
    Setting {
        key,
        value: kb,
        reason,
    }
}

/// Total connections: the open-file limit less [`FD_RESERVE`] (at least half the limit),
/// so that the server refuses a connection before it runs out of descriptors for its log.
fn max_cnxns(host: &HostReport) -> Setting<u64> {
    let key = "maxCnxns";
    match host.nofile.soft {
        None => Setting {
            key,
            value: 0,
            reason: "open files unlimited: no total connection limit needed".to_string(),
        },
        Some(soft) => {
            let value = soft.saturating_sub(FD_RESERVE).max(soft / 2);
            Setting {
                key,
                value,
                reason: format!(
                    "open-file limit {soft} less {} kept for log segments, snapshots, \
                     listeners and rings: refuse connections before accept(2) fails with \
                     EMFILE and the log cannot open its next segment",
                    soft - value
                ),
            }
        }
    }
}

/// Connections per client IP address: ZooKeeper's 60, which stops one leaking client
/// process from taking every descriptor, unless the total limit is smaller.
fn max_client_cnxns(max_cnxns: u64) -> Setting<u64> {
    let key = "maxClientCnxns";
    if max_cnxns != 0 && max_cnxns < MAX_CLIENT_CNXNS_DEFAULT {
        return Setting {
            key,
            value: max_cnxns,
            reason: format!("the total limit ({max_cnxns}) is below ZooKeeper's default 60"),
        };
    }
    Setting {
        key,
        value: MAX_CLIENT_CNXNS_DEFAULT,
        reason: "ZooKeeper's default: one host with a connection leak (a client app that opens \
                 a session per request) cannot take all descriptors; raise it for hosts that \
                 legitimately run many clients behind one address (NAT, a sidecar proxy)"
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use crate::probe::{GroupCommit, SyncLatency};

    #[test]
    fn shards_leave_a_core_to_the_commit_stage_from_four_cpus() {
        assert_eq!(shards_for_cpus(0), 1);
        assert_eq!(shards_for_cpus(1), 1);
        assert_eq!(shards_for_cpus(2), 2);
        assert_eq!(shards_for_cpus(3), 3);
        assert_eq!(shards_for_cpus(4), 3);
        assert_eq!(shards_for_cpus(64), 63);
        let mut host = fixtures::host();
        host.cpus.usable = 8;
        let r = recommend(&host);
        assert_eq!(r.shards.value, 7);
        assert!(r.shards.reason.contains("commit stage"));
    }

    #[test]
    fn floor_pow2_rounds_down() {
        assert_eq!(floor_pow2(1), 1);
        assert_eq!(floor_pow2(16), 16);
        assert_eq!(floor_pow2(17), 16);
        assert_eq!(floor_pow2(4095), 2048);
    }

    /// A disk like this host's virtio disk: sync p99 600 µs; a batch of 256 records costs
    /// 255 µs more than a batch of 1 (1 µs per record).
    fn disk(sync_p99_us: f64, p50_1: f64, p50_256: f64) -> DiskReport {
        let mut d = fixtures::disk();
        d.sync_fallocated = Some(SyncLatency {
            p99_us: sync_p99_us,
            ..fixtures::sync()
        });
        d.group_commit = vec![
            GroupCommit {
                batch_records: 1,
                batch_p50_us: p50_1,
                ..fixtures::group_commit(1, 4000.0)
            },
            GroupCommit {
                batch_records: 256,
                batch_p50_us: p50_256,
                ..fixtures::group_commit(256, 2000.0)
            },
        ];
        d
    }

    #[test]
    fn batch_limit_fits_two_cycles_into_the_target() {
        let mut host = fixtures::host();
        host.disk = Some(disk(600.0, 250.0, 505.0));
        let targets = Targets {
            write_latency_p99_us: 5_000.0,
            prep_us_per_request: 5.0,
            ..Targets::default()
        };
        // (2500 - 600) / (1 + 5) = 316 -> 256.
        let r = recommend_with(&host, &targets);
        assert_eq!(r.commit_batch_max.value, 256);
        assert!(
            r.commit_batch_max.reason.contains("= 317"),
            "{}",
            r.commit_batch_max.reason
        );

        // A faster commit stage allows bigger batches: 1900 / 1.5 = 1266 -> 1024.
        let fast = Targets {
            prep_us_per_request: 0.5,
            ..targets
        };
        assert_eq!(recommend_with(&host, &fast).commit_batch_max.value, 1024);
    }

    #[test]
    fn batch_limit_on_a_slow_disk_matches_the_sync_time() {
        let mut host = fixtures::host();
        // A spinning disk: sync p99 12 ms, above half the 5 ms target.
        host.disk = Some(disk(12_000.0, 8_000.0, 8_255.0));
        let r = recommend(&host);
        // 12000 / (1 + 5) = 2000 -> 1024.
        assert_eq!(r.commit_batch_max.value, 1024);
        assert!(r.commit_batch_max.reason.contains("exceeds half"));
    }

    #[test]
    fn values_from_a_busy_host_say_so() {
        let mut host = fixtures::host();
        let mut d = disk(600.0, 250.0, 505.0);
        assert!(!recommend(&host).commit_batch_max.reason.contains("BUSY"));
        d.pressure_before = Some(crate::probe::Pressure {
            io_some_avg10: Some(1.0),
            cpu_some_avg10: Some(92.0),
        });
        host.disk = Some(d);
        let r = recommend(&host);
        assert!(r.commit_batch_max.reason.contains("BUSY HOST"));
        assert!(r.pre_alloc_size_kb.reason.contains("BUSY HOST"));
    }

    #[test]
    fn batch_limit_is_clamped() {
        let mut host = fixtures::host();
        // Very fast disk and free commit stage: would be huge; clamped to 4096.
        host.disk = Some(disk(50.0, 20.0, 20.0));
        let t = Targets {
            prep_us_per_request: 0.0,
            ..Targets::default()
        };
        assert_eq!(
            recommend_with(&host, &t).commit_batch_max.value,
            COMMIT_BATCH_MAX_MAX
        );
        // Tight target with an expensive commit stage: at least 16.
        host.disk = Some(disk(600.0, 250.0, 505.0));
        let t = Targets {
            write_latency_p99_us: 1_300.0,
            prep_us_per_request: 50.0,
            ..Targets::default()
        };
        assert_eq!(
            recommend_with(&host, &t).commit_batch_max.value,
            COMMIT_BATCH_MAX_MIN
        );
    }

    #[test]
    fn batch_limit_falls_back_without_a_meaningful_measurement() {
        let mut host = fixtures::host();
        host.disk = None;
        assert_eq!(
            recommend(&host).commit_batch_max.value,
            COMMIT_BATCH_MAX_DEFAULT
        );
        let mut d = disk(600.0, 250.0, 505.0);
        d.in_memory = true;
        host.disk = Some(d);
        let r = recommend(&host);
        assert_eq!(r.commit_batch_max.value, COMMIT_BATCH_MAX_DEFAULT);
        assert!(r.commit_batch_max.reason.contains("in memory"));
        let mut d = disk(600.0, 250.0, 505.0);
        d.group_commit.clear();
        host.disk = Some(d);
        assert_eq!(
            recommend(&host).commit_batch_max.value,
            COMMIT_BATCH_MAX_DEFAULT
        );
    }

    #[test]
    fn segment_size_follows_the_peak_append_rate() {
        let mut host = fixtures::host();
        let mut d = fixtures::disk();
        // 2,000 batches/s of 256 records = 512k records/s * 124 B = 63.5 MB/s -> 62,000 KiB
        // a second -> next power of two 65,536 KiB = 64 MiB.
        d.group_commit = vec![fixtures::group_commit(256, 512_000.0)];
        host.disk = Some(d.clone());
        assert_eq!(recommend(&host).pre_alloc_size_kb.value, 64 * 1024);
        // Twice as fast: 128 MiB.
        d.group_commit = vec![fixtures::group_commit(256, 1_024_000.0)];
        host.disk = Some(d.clone());
        assert_eq!(recommend(&host).pre_alloc_size_kb.value, 128 * 1024);
        // Absurdly fast: capped at 1 GiB.
        d.group_commit = vec![fixtures::group_commit(256, 1e9)];
        host.disk = Some(d.clone());
        assert_eq!(
            recommend(&host).pre_alloc_size_kb.value,
            PRE_ALLOC_SIZE_KB_MAX
        );
        // Slow: never below ZooKeeper's 64 MiB.
        d.group_commit = vec![fixtures::group_commit(1, 1000.0)];
        host.disk = Some(d);
        assert_eq!(
            recommend(&host).pre_alloc_size_kb.value,
            PRE_ALLOC_SIZE_KB_DEFAULT
        );
    }

    #[test]
    fn segment_size_fits_the_free_space() {
        let mut host = fixtures::host();
        let mut d = fixtures::disk();
        d.free_bytes = Some(512 * 1024 * 1024); // 512 MiB free -> at most 16 MiB.
        host.disk = Some(d.clone());
        let r = recommend(&host);
        assert_eq!(r.pre_alloc_size_kb.value, 16 * 1024);
        assert!(r.pre_alloc_size_kb.reason.contains("free"));
        d.free_bytes = Some(1024 * 1024); // 1 MiB free: floor of 4 MiB.
        host.disk = Some(d);
        assert_eq!(
            recommend(&host).pre_alloc_size_kb.value,
            PRE_ALLOC_SIZE_KB_MIN
        );
    }

    #[test]
    fn connection_limits_follow_the_open_file_limit() {
        let mut host = fixtures::host();
        host.nofile.soft = Some(20_000);
        let r = recommend(&host);
        assert_eq!(r.max_cnxns.value, 20_000 - FD_RESERVE);
        assert_eq!(r.max_client_cnxns.value, 60);

        host.nofile.soft = Some(100);
        let r = recommend(&host);
        assert_eq!(r.max_cnxns.value, 50);
        assert_eq!(r.max_client_cnxns.value, 50);

        host.nofile.soft = None;
        let r = recommend(&host);
        assert_eq!(r.max_cnxns.value, 0);
        assert_eq!(r.max_client_cnxns.value, 60);
    }

    #[test]
    fn zoo_cfg_lists_every_setting_with_its_reason() {
        let cfg = recommend(&fixtures::host()).zoo_cfg();
        for key in [
            "ferrokeeper.shards=",
            "ferrokeeper.commitBatchMax=",
            "preAllocSize=",
            "maxClientCnxns=",
            "maxCnxns=",
        ] {
            assert!(
                cfg.lines().any(|l| l.starts_with(key)),
                "{key} missing in\n{cfg}"
            );
        }
        // Every non-comment line is key=value; every setting has a comment before it.
        let lines: Vec<&str> = cfg.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            if !l.starts_with('#') {
                assert!(l.contains('='));
                assert!(lines[i - 1].starts_with('#'));
            }
        }
    }
}
