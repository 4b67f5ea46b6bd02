//! Hand-built reports for the tests: a healthy 2-CPU VM much like the development
//! machine. Tests change the one field they are about.

use std::path::PathBuf;

use crate::host::{ClocksourceReport, CpuReport, HostReport, IoUringReport, Rlimit, ThpReport};
use crate::probe::{BlockDevice, DiskReport, Fallocate, GroupCommit, Pressure, SyncLatency};

pub fn host() -> HostReport {
    HostReport {
        kernel_release: Some("6.1.0-18-amd64".to_string()),
        effective_uid: 1000,
        cap_ipc_lock: Some(false),
        cpus: CpuReport {
            online: Some(2),
            usable: 2,
            numa_nodes: Some(1),
        },
        io_uring: IoUringReport {
            disabled_sysctl: Some(0),
            ring_created: true,
            error: None,
            unsupported_opcodes: Vec::new(),
        },
        nofile: Rlimit {
            soft: Some(20_000),
            hard: Some(20_000),
        },
        memlock: Rlimit {
            soft: Some(8 * 1024 * 1024),
            hard: Some(8 * 1024 * 1024),
        },
        somaxconn: Some(4096),
        tcp_max_syn_backlog: Some(2048),
        tcp_syncookies: Some(1),
        thp: Some(ThpReport {
            enabled: Some("madvise".to_string()),
            defrag: Some("madvise".to_string()),
        }),
        governors: Vec::new(),
        clocksource: Some(ClocksourceReport {
            current: "tsc".to_string(),
            available: vec!["tsc".to_string(), "kvm-clock".to_string()],
        }),
        swappiness: Some(60),
        swap_total_kib: Some(0),
        memory_total_kib: Some(24_683_656),
        disk: Some(disk()),
    }
}

pub fn disk() -> DiskReport {
    DiskReport {
        data_dir: PathBuf::from("/var/lib/ferrokeeper"),
        filesystem: Some("ext4".to_string()),
        in_memory: false,
        free_bytes: Some(64 * 1024 * 1024 * 1024),
        device: Some(BlockDevice {
            name: "vda".to_string(),
            rotational: Some(false),
            write_cache: Some("write back".to_string()),
            scheduler: Some("none".to_string()),
            driver: Some("virtio_blk".to_string()),
        }),
        fallocate: Some(Fallocate {
            works: true,
            error: None,
        }),
        sync_fallocated: Some(sync()),
        sync_written: Some(SyncLatency {
            p50_us: 150.0,
            p99_us: 400.0,
            ..sync()
        }),
        group_commit: vec![
            group_commit(1, 4_000.0),
            group_commit(16, 60_000.0),
            group_commit(256, 600_000.0),
        ],
        budget_seconds: 6.0,
        elapsed_seconds: 6.1,
        pressure_before: Some(Pressure {
            io_some_avg10: Some(0.5),
            cpu_some_avg10: Some(1.0),
        }),
        error: None,
    }
}

pub fn sync() -> SyncLatency {
    SyncLatency {
        direct_io: true,
        direct_io_error: None,
        samples: 9_000,
        p50_us: 230.0,
        p99_us: 600.0,
        max_us: 4_000.0,
        syncs_per_second: 4_000.0,
        stopped_at_file_end: false,
    }
}

/// A group-commit measurement of `batch_records` per batch at `records_per_second`, with
/// batch latencies consistent with it.
pub fn group_commit(batch_records: usize, records_per_second: f64) -> GroupCommit {
    let batches_per_second = records_per_second / batch_records as f64;
    GroupCommit {
        batch_records,
        record_bytes: crate::probe::RECORD_BYTES,
        batches: 1000,
        records_per_second,
        batches_per_second,
        batch_p50_us: 1e6 / batches_per_second,
        batch_p99_us: 2e6 / batches_per_second,
        stopped_at_file_end: false,
    }
}
