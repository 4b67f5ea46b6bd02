//! The host checks: each turns part of a [`HostReport`] into a status, what was found, why
//! it matters for ferrokeeper, and the exact fix.
//!
//! [`evaluate`] is pure, like the recommendations: every threshold is a named constant
//! here, and the tests drive each check with hand-built reports.

use serde::Serialize;

use crate::host::HostReport;
use crate::probe::{DiskReport, SyncLatency};
use crate::recommend::{self, Targets, FD_RESERVE};

/// glommio's minimum kernel: the io_uring operations it issues unconditionally.
pub const IO_URING_KERNEL_MIN: (u32, u32) = (5, 8);
/// Memory glommio locks per executor (its registered io_uring buffers), in bytes.
pub const GLOMMIO_MEMLOCK_BYTES_PER_EXECUTOR: u64 = 512 * 1024;
/// The `listen(2)` backlog glommio uses for each shard's listener; the kernel caps it at
/// `net.core.somaxconn`.
pub const GLOMMIO_LISTEN_BACKLOG: u64 = 1024;
/// The value `--apply` sets for `net.core.somaxconn` and `net.ipv4.tcp_max_syn_backlog`
/// when they are below [`GLOMMIO_LISTEN_BACKLOG`] (Linux's own somaxconn default since 5.4).
pub const LISTEN_QUEUE_RECOMMENDED: u64 = 4096;
/// Above this `vm.swappiness` the kernel swaps out anonymous memory (the tree) readily.
pub const SWAPPINESS_MAX: u64 = 10;
/// Sync p99 at or below this is a disk fit for a coordination log.
pub const SYNC_P99_OK_US: f64 = 2_000.0;
/// Sync p99 above this fails: etcd's guidance for consensus logs (99% of fdatasyncs under
/// 10 ms), and every ferrokeeper write waits for at least one sync.
pub const SYNC_P99_FAIL_US: f64 = 10_000.0;
/// Batches of 256 records should be at least this many times faster (in records/s)
/// than batches of 1, or the disk is bound by bandwidth and batching helps little.
pub const GROUP_COMMIT_GAIN_MIN: f64 = 4.0;
/// Below this much free space in the data directory, warn.
pub const FREE_BYTES_WARN: u64 = 2 * 1024 * 1024 * 1024;

/// Every check, in the order they are reported. These names are stable: the JSON output,
/// the bench report and the tests refer to them.
pub const CHECK_NAMES: [&str; 14] = [
    "io_uring",
    "memlock",
    "open_files",
    "somaxconn",
    "tcp_max_syn_backlog",
    "transparent_hugepages",
    "cpu_governor",
    "clocksource",
    "swappiness",
    "cpus_numa",
    "data_dir_filesystem",
    "fallocate",
    "fsync_latency",
    "group_commit",
];

/// How a check came out, from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Fine for ferrokeeper.
    Ok,
    /// The host could not say (for example no cpufreq in a VM); nothing is known to be wrong.
    Unknown,
    /// ferrokeeper runs, but slower or less predictably than it could.
    Warn,
    /// ferrokeeper does not start, or loses data, or misses its latency badly.
    Fail,
}

impl Status {
    /// The label in the text report.
    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Unknown => "unknown",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// One of [`CHECK_NAMES`].
    pub name: &'static str,
    /// The outcome.
    pub status: Status,
    /// What was found, with the values.
    pub found: String,
    /// Why it matters for ferrokeeper.
    pub why: &'static str,
    /// The exact fix (commands), when the status is not ok.
    pub fix: Option<String>,
}

fn check(name: &'static str, status: Status, found: String, why: &'static str) -> Check {
    Check {
        name,
        status,
        found,
        why,
        fix: None,
    }
}

impl Check {
    fn fix(mut self, fix: impl Into<String>) -> Check {
        self.fix = Some(fix.into());
        self
    }
}

/// Runs every check on `host`, in the order of [`CHECK_NAMES`].
pub fn evaluate(host: &HostReport, targets: &Targets) -> Vec<Check> {
    let disk = host.disk.as_ref();
    let checks = vec![
        io_uring(host),
        memlock(host),
        open_files(host, targets),
        somaxconn(host),
        tcp_max_syn_backlog(host),
        transparent_hugepages(host),
        cpu_governor(host),
        clocksource(host),
        swappiness(host),
        cpus_numa(host),
        data_dir_filesystem(disk),
        fallocate(disk),
        fsync_latency(disk),
        group_commit(disk),
    ];
    debug_assert!(checks.iter().map(|c| c.name).eq(CHECK_NAMES));
    checks
}

/// The worst status among `checks` (ok for none).
pub fn worst(checks: &[Check]) -> Status {
    checks.iter().map(|c| c.status).max().unwrap_or(Status::Ok)
}

/// Microseconds for people: `230 µs`, `4.1 ms`.
pub fn human_us(us: f64) -> String {
    if us < 1_000.0 {
        format!("{us:.0} µs")
    } else {
        format!("{:.1} ms", us / 1_000.0)
    }
}

fn human_bytes(bytes: u64) -> String {
    const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
    if bytes as f64 >= GIB {
        format!("{:.1} GiB", bytes as f64 / GIB)
    } else {
        format!("{} MiB", bytes / (1024 * 1024))
    }
}

fn limit(v: Option<u64>) -> String {
    v.map_or_else(|| "unlimited".to_string(), |v| v.to_string())
}

const WHY_IO_URING: &str = "ferrokeeper's shards and its log run on glommio, which does all \
    network and disk IO through io_uring; without it the server does not start";

fn io_uring(host: &HostReport) -> Check {
    let u = &host.io_uring;
    let sysctl = u
        .disabled_sysctl
        .map_or("absent (kernel before 6.6)".to_string(), |v| v.to_string());
    let kernel = host.kernel_release.as_deref().unwrap_or("unknown");
    if let Some(v) = host
        .kernel_release
        .as_deref()
        .and_then(crate::parse::kernel_version)
    {
        if v < IO_URING_KERNEL_MIN {
            return check(
                "io_uring",
                Status::Fail,
                format!(
                    "kernel {kernel} is older than {}.{}",
                    IO_URING_KERNEL_MIN.0, IO_URING_KERNEL_MIN.1
                ),
                WHY_IO_URING,
            )
            .fix(format!(
                "run on Linux {}.{} or newer (5.15+ recommended)",
                IO_URING_KERNEL_MIN.0, IO_URING_KERNEL_MIN.1
            ));
        }
    }
    if !u.ring_created {
        let err = u.error.as_deref().unwrap_or("unknown error");
        let fix = match u.disabled_sysctl {
            Some(2) => "sysctl -w kernel.io_uring_disabled=0   (2 disables io_uring for everyone)"
                .to_string(),
            Some(1) => "add the server's user to the group in kernel.io_uring_group \
                        (cat /proc/sys/kernel/io_uring_group), or sysctl -w kernel.io_uring_disabled=0"
                .to_string(),
            _ => "io_uring is blocked although the kernel allows it: in a container, the \
                  seccomp profile (Docker's default blocks io_uring_setup/enter/register) — run \
                  with a profile that allows them, e.g. docker run --security-opt \
                  seccomp=<profile>; under systemd, check SystemCallFilter="
                .to_string(),
        };
        return check(
            "io_uring",
            Status::Fail,
            format!(
                "creating a ring failed: {err}; kernel {kernel}; kernel.io_uring_disabled={sysctl}"
            ),
            WHY_IO_URING,
        )
        .fix(fix);
    }
    if !u.unsupported_opcodes.is_empty() {
        return check(
            "io_uring",
            Status::Fail,
            format!(
                "ring created, but kernel {kernel} lacks io_uring operations: {}",
                u.unsupported_opcodes.join(", ")
            ),
            WHY_IO_URING,
        )
        .fix("run on a newer kernel (5.15+)");
    }
    let probe_note = u
        .error
        .as_deref()
        .map_or(String::new(), |e| format!(" (operations not probed: {e})"));
    if u.disabled_sysctl == Some(1) {
        return check(
            "io_uring",
            Status::Warn,
            format!(
                "ring created as uid {}, but kernel.io_uring_disabled=1 allows io_uring only for \
                 CAP_SYS_ADMIN and the group in kernel.io_uring_group{probe_note}",
                host.effective_uid
            ),
            WHY_IO_URING,
        )
        .fix(
            "run the server as root or as a member of kernel.io_uring_group, \
             or sysctl -w kernel.io_uring_disabled=0",
        );
    }
    check(
        "io_uring",
        Status::Ok,
        format!("ring created; kernel {kernel}; kernel.io_uring_disabled={sysctl}{probe_note}"),
        WHY_IO_URING,
    )
}

fn memlock(host: &HostReport) -> Check {
    const WHY: &str = "glommio locks about 512 KiB per executor for its registered io_uring \
        buffers, and the server runs one executor per shard plus the commit stage; over \
        RLIMIT_MEMLOCK an executor fails to start";
    let executors = recommend::shards_for_cpus(host.cpus.usable) as u64 + 1;
    let needed = GLOMMIO_MEMLOCK_BYTES_PER_EXECUTOR * executors;
    let found = format!(
        "RLIMIT_MEMLOCK soft {} hard {} bytes; {executors} executors need about {needed}",
        limit(host.memlock.soft),
        limit(host.memlock.hard)
    );
    if host.is_root() || host.cap_ipc_lock == Some(true) {
        return check(
            "memlock",
            Status::Ok,
            format!("{found}; running with CAP_IPC_LOCK (root), which bypasses the limit"),
            WHY,
        );
    }
    match host.memlock.soft {
        Some(soft) if soft < needed => {
            // Round the recommendation up to whole MiB, with room for more shards.
            let want_kib = (needed * 2).div_ceil(1024 * 1024) * 1024;
            check("memlock", Status::Fail, found, WHY).fix(format!(
                "ulimit -l {want_kib} before starting the server (needs hard limit >= {want_kib} KiB); \
                 under systemd: LimitMEMLOCK={}; or in /etc/security/limits.conf: \
                 <user> - memlock {want_kib}",
                want_kib * 1024
            ))
        }
        _ => check("memlock", Status::Ok, found, WHY),
    }
}

fn open_files(host: &HostReport, targets: &Targets) -> Check {
    const WHY: &str = "every client connection is a file descriptor, as are log segments, \
        snapshots and rings; at the limit accept(2) fails with EMFILE and, worse, the log \
        cannot open its next segment";
    let need = targets.expected_connections + FD_RESERVE;
    let found = format!(
        "RLIMIT_NOFILE soft {} hard {}; {} expected connections + {FD_RESERVE} reserved need {need}",
        limit(host.nofile.soft),
        limit(host.nofile.hard),
        targets.expected_connections
    );
    let Some(soft) = host.nofile.soft else {
        return check("open_files", Status::Ok, found, WHY);
    };
    if soft >= need {
        return check("open_files", Status::Ok, found, WHY);
    }
    let status = if soft <= FD_RESERVE {
        Status::Fail
    } else {
        Status::Warn
    };
    let hard_ok = host.nofile.hard.is_none_or(|h| h >= need);
    let fix = if hard_ok {
        format!(
            "the hard limit allows it: ulimit -n {need} before starting the server; under \
             systemd: LimitNOFILE={need}"
        )
    } else {
        format!(
            "raise the hard limit too: under systemd LimitNOFILE={need}; otherwise in \
             /etc/security/limits.conf: <user> - nofile {need} (then log in again)"
        )
    };
    check("open_files", status, found, WHY).fix(fix)
}

fn somaxconn(host: &HostReport) -> Check {
    const WHY: &str = "each shard listens with a backlog of 1024 (glommio), which the kernel \
        caps at net.core.somaxconn; when all clients reconnect at once (a server restart, a \
        network blip) connections beyond the accept queue are dropped and retried after 1 s, \
        3 s, 7 s... while their sessions count down to expiry";
    let Some(v) = host.somaxconn else {
        return check(
            "somaxconn",
            Status::Unknown,
            "net.core.somaxconn is not readable (no /proc/sys/net in this container?)".to_string(),
            WHY,
        );
    };
    if v < GLOMMIO_LISTEN_BACKLOG {
        check(
            "somaxconn",
            Status::Warn,
            format!(
                "net.core.somaxconn={v}: caps each shard's accept queue below glommio's \
                 {GLOMMIO_LISTEN_BACKLOG}"
            ),
            WHY,
        )
        .fix(format!(
            "sysctl -w net.core.somaxconn={LISTEN_QUEUE_RECOMMENDED}; to keep it: echo \
             'net.core.somaxconn={LISTEN_QUEUE_RECOMMENDED}' >> /etc/sysctl.d/90-ferrokeeper.conf"
        ))
    } else {
        check(
            "somaxconn",
            Status::Ok,
            format!(
                "net.core.somaxconn={v} (>= glommio's listen backlog {GLOMMIO_LISTEN_BACKLOG})"
            ),
            WHY,
        )
    }
}

fn tcp_max_syn_backlog(host: &HostReport) -> Check {
    const WHY: &str = "half-open connections (SYN received) queued per listener; in a \
        reconnect storm the kernel drops SYNs beyond it (or answers with syncookies, which \
        lose TCP options), and each drop costs the client a 1 s retransmit";
    let cookies = host
        .tcp_syncookies
        .map_or(String::new(), |c| format!(", net.ipv4.tcp_syncookies={c}"));
    let Some(v) = host.tcp_max_syn_backlog else {
        return check(
            "tcp_max_syn_backlog",
            Status::Unknown,
            "net.ipv4.tcp_max_syn_backlog is not readable".to_string(),
            WHY,
        );
    };
    if v < GLOMMIO_LISTEN_BACKLOG {
        check(
            "tcp_max_syn_backlog",
            Status::Warn,
            format!("net.ipv4.tcp_max_syn_backlog={v}{cookies}"),
            WHY,
        )
        .fix(format!(
            "sysctl -w net.ipv4.tcp_max_syn_backlog={LISTEN_QUEUE_RECOMMENDED}; to keep it: echo \
             'net.ipv4.tcp_max_syn_backlog={LISTEN_QUEUE_RECOMMENDED}' >> /etc/sysctl.d/90-ferrokeeper.conf"
        ))
    } else {
        check(
            "tcp_max_syn_backlog",
            Status::Ok,
            format!("net.ipv4.tcp_max_syn_backlog={v}{cookies}"),
            WHY,
        )
    }
}

fn transparent_hugepages(host: &HostReport) -> Check {
    const WHY: &str = "with THP 'always', page faults may stall for compaction and khugepaged \
        rewrites memory in the background: a stalled shard stalls every connection it owns. \
        The RCU tree frees and allocates small nodes all the time, and huge pages keep partly \
        used 2 MiB regions resident (RSS grows). 'madvise' leaves huge pages to code that asks";
    let Some(thp) = &host.thp else {
        return check(
            "transparent_hugepages",
            Status::Ok,
            "the kernel has no transparent huge pages".to_string(),
            WHY,
        );
    };
    let enabled = thp.enabled.as_deref().unwrap_or("unknown");
    let defrag = thp.defrag.as_deref().unwrap_or("unknown");
    let found = format!("enabled={enabled}, defrag={defrag}");
    match enabled {
        "always" => check("transparent_hugepages", Status::Warn, found, WHY).fix(
            "echo madvise > /sys/kernel/mm/transparent_hugepage/enabled; to keep it: kernel \
             parameter transparent_hugepage=madvise",
        ),
        "madvise" | "never" => check("transparent_hugepages", Status::Ok, found, WHY),
        _ => check("transparent_hugepages", Status::Unknown, found, WHY),
    }
}

fn cpu_governor(host: &HostReport) -> Check {
    const WHY: &str = "powersave, ondemand and schedutil lower a core's clock while it idles; \
        a shard woken by a request then runs slowly for milliseconds until the governor ramps \
        up, which is the tail latency at low or bursty load. 'performance' trades power for it";
    if host.governors.is_empty() {
        return check(
            "cpu_governor",
            Status::Unknown,
            "no cpufreq in /sys/devices/system/cpu/cpu*/cpufreq (usual in a VM, where the \
             hypervisor sets the frequency)"
                .to_string(),
            WHY,
        );
    }
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for g in &host.governors {
        match counts.iter_mut().find(|(name, _)| *name == g.governor) {
            Some((_, n)) => *n += 1,
            None => counts.push((&g.governor, 1)),
        }
    }
    let found = counts
        .iter()
        .map(|(name, n)| format!("{name} on {n} CPU(s)"))
        .collect::<Vec<_>>()
        .join(", ");
    if counts.iter().all(|(name, _)| *name == "performance") {
        check("cpu_governor", Status::Ok, found, WHY)
    } else {
        check("cpu_governor", Status::Warn, found, WHY).fix(
            "cpupower frequency-set -g performance   (or: for g in \
             /sys/devices/system/cpu/cpu*/cpufreq/scaling_governor; do echo performance > $g; \
             done). --apply never changes this: it is a power decision",
        )
    }
}

fn clocksource(host: &HostReport) -> Check {
    const WHY: &str = "ferrokeeper reads the clock on every request (session touches, latency \
        histograms, timers): with tsc clock_gettime is a ~20 ns read in user space; hpet and \
        acpi_pm make it a system call of a microsecond or more; kvm-clock is read in user \
        space but is slower than tsc";
    let Some(cs) = &host.clocksource else {
        return check(
            "clocksource",
            Status::Unknown,
            "no /sys/devices/system/clocksource".to_string(),
            WHY,
        );
    };
    let found = format!(
        "current {}, available: {}",
        cs.current,
        cs.available.join(" ")
    );
    // arch_sys_counter is arm64's architected timer, the fast source there.
    if cs.current == "tsc" || cs.current == "arch_sys_counter" {
        return check("clocksource", Status::Ok, found, WHY);
    }
    let fix = if cs.available.iter().any(|a| a == "tsc") {
        "echo tsc > /sys/devices/system/clocksource/clocksource0/current_clocksource; to keep \
         it: kernel parameters clocksource=tsc tsc=reliable (only if the host's TSC is stable)"
    } else {
        "no faster clock source is offered (tsc is not listed: the CPU or hypervisor does not \
         expose a stable TSC); nothing to change on this host"
    };
    check("clocksource", Status::Warn, found, WHY).fix(fix)
}

fn swappiness(host: &HostReport) -> Check {
    const WHY: &str = "the znode tree lives in memory; if its pages are swapped out, a read \
        touching them takes a major fault (milliseconds, on a shard thread that serves every \
        connection on its core), and session heartbeats queued behind it can time out";
    if host.swap_total_kib == Some(0) {
        return check(
            "swappiness",
            Status::Ok,
            format!(
                "no swap configured (vm.swappiness={} has no effect)",
                limit(host.swappiness)
            ),
            WHY,
        );
    }
    let swap = host
        .swap_total_kib
        .map_or("unknown".to_string(), |k| format!("{} MiB", k / 1024));
    match host.swappiness {
        None => check(
            "swappiness",
            Status::Unknown,
            format!("vm.swappiness not readable; swap {swap}"),
            WHY,
        ),
        Some(v) if v > SWAPPINESS_MAX => check(
            "swappiness",
            Status::Warn,
            format!("vm.swappiness={v} with {swap} of swap"),
            WHY,
        )
        .fix(
            "sysctl -w vm.swappiness=1; to keep it: echo 'vm.swappiness=1' >> \
             /etc/sysctl.d/90-ferrokeeper.conf",
        ),
        Some(v) => check(
            "swappiness",
            Status::Ok,
            format!("vm.swappiness={v} with {swap} of swap"),
            WHY,
        ),
    }
}

fn cpus_numa(host: &HostReport) -> Check {
    const WHY: &str = "ferrokeeper runs one shard per core plus one commit stage; the cores \
        usable by the process decide ferrokeeper.shards, and shards on several NUMA nodes \
        share one tree, so half their memory accesses cross the interconnect";
    let c = &host.cpus;
    let nodes = c
        .numa_nodes
        .map_or("unknown".to_string(), |n| n.to_string());
    let online = c.online.map_or("unknown".to_string(), |n| n.to_string());
    let found = format!(
        "{online} CPUs online, {} usable by this process, {nodes} NUMA node(s)",
        c.usable
    );
    if c.usable <= 1 {
        return check("cpus_numa", Status::Warn, found, WHY).fix(
            "give the server at least 2 CPUs (cgroup cpu quota, taskset/affinity): with one, \
             the shard and the commit stage take turns on it",
        );
    }
    if c.numa_nodes.is_some_and(|n| n > 1) {
        return check("cpus_numa", Status::Warn, found, WHY).fix(
            "bind the server to one node: numactl --cpunodebind=0 --membind=0 ferrokeeper \
             <zoo.cfg>, and run the tuner the same way so that ferrokeeper.shards matches",
        );
    }
    check("cpus_numa", Status::Ok, found, WHY)
}

const WHY_FS: &str = "the transaction log and snapshots live here: a write is acknowledged \
    only after its log batch is synced to this filesystem, and recovery reads it back";

fn data_dir_filesystem(disk: Option<&DiskReport>) -> Check {
    let Some(d) = disk else {
        return check(
            "data_dir_filesystem",
            Status::Unknown,
            "data directory not probed".to_string(),
            WHY_FS,
        );
    };
    let Some(fs) = d.filesystem.as_deref() else {
        return check(
            "data_dir_filesystem",
            Status::Fail,
            d.error
                .clone()
                .unwrap_or_else(|| "filesystem unknown".to_string()),
            WHY_FS,
        )
        .fix(format!(
            "create the directory (mkdir -p {}) or pass --data-dir with the zoo.cfg's \
             dataLogDir (else dataDir)",
            d.data_dir.display()
        ));
    };
    let mut found = format!("{} on {fs}", d.data_dir.display());
    let is_virtual = d
        .device
        .as_ref()
        .is_some_and(|dev| crate::parse::is_virtual_disk(&dev.name, dev.driver.as_deref()));
    if let Some(dev) = &d.device {
        let kind = match (is_virtual, dev.rotational) {
            (true, _) => "virtual disk, whose rotational flag means nothing",
            (false, Some(true)) => "rotational",
            (false, Some(false)) => "non-rotational",
            (false, None) => "unknown kind",
        };
        found.push_str(&format!(
            ", device {} ({kind}, cache {}, scheduler {})",
            dev.name,
            dev.write_cache.as_deref().unwrap_or("unknown"),
            dev.scheduler.as_deref().unwrap_or("unknown")
        ));
    }
    if let Some(free) = d.free_bytes {
        found.push_str(&format!(", {} free", human_bytes(free)));
    }
    let mut status = Status::Ok;
    let mut fixes = Vec::new();
    if d.in_memory {
        status = Status::Fail;
        found.push_str(
            ": in memory, so nothing written here survives a reboot and fsync \
                        numbers are meaningless",
        );
        fixes.push("put dataLogDir (and dataDir) on a disk-backed filesystem, ext4 or xfs");
    }
    match fs {
        "overlayfs" | "aufs" => {
            status = status.max(Status::Warn);
            fixes.push(
                "this is a container's writable layer: mount a volume for dataLogDir \
                 (docker run -v /srv/ferrokeeper:/data)",
            );
        }
        "nfs" | "cifs" | "smb2" | "fuse" | "9p" | "ceph" => {
            status = status.max(Status::Warn);
            fixes.push(
                "a network or user-space filesystem: sync latency and semantics depend on a \
                 remote server; use a local disk for dataLogDir",
            );
        }
        "btrfs" | "zfs" => {
            status = status.max(Status::Warn);
            fixes.push(
                "copy-on-write filesystem: every sync also writes metadata trees; prefer ext4 \
                 or xfs for dataLogDir (on btrfs at least chattr +C the empty directory)",
            );
        }
        _ => {}
    }
    if !is_virtual && d.device.as_ref().and_then(|dev| dev.rotational) == Some(true) {
        status = status.max(Status::Warn);
        fixes.push(
            "a spinning disk costs a seek per sync: put dataLogDir on an SSD, or at least on a \
             disk of its own (ZooKeeper's admin guide: a dedicated transaction log device)",
        );
    }
    if d.free_bytes.is_some_and(|f| f < FREE_BYTES_WARN) {
        status = status.max(Status::Warn);
        fixes.push(
            "less than 2 GiB free: enable autopurge (autopurge.purgeInterval=1) and free space",
        );
    }
    let c = check("data_dir_filesystem", status, found, WHY_FS);
    if fixes.is_empty() {
        c
    } else {
        c.fix(fixes.join("; "))
    }
}

fn fallocate(disk: Option<&DiskReport>) -> Check {
    const WHY: &str = "each log segment is preallocated with fallocate so that an append's \
        fdatasync never has to commit a file size change (an extra metadata write per sync)";
    match disk.and_then(|d| d.fallocate.as_ref()) {
        None => check(
            "fallocate",
            Status::Unknown,
            "not tested (data directory not usable)".to_string(),
            WHY,
        ),
        Some(f) if f.works => check("fallocate", Status::Ok, "works".to_string(), WHY),
        Some(f) => check(
            "fallocate",
            Status::Warn,
            format!("fails: {}", f.error.as_deref().unwrap_or("unknown error")),
            WHY,
        )
        .fix("put dataLogDir on ext4 or xfs, which support fallocate"),
    }
}

fn fsync_latency(disk: Option<&DiskReport>) -> Check {
    const WHY: &str = "every write waits for its batch's fdatasync: the sync latency is the \
        floor of write latency, and syncs per second times the batch size is the ceiling of \
        write throughput (group commit)";
    let Some(d) = disk else {
        return check(
            "fsync_latency",
            Status::Unknown,
            "not measured".to_string(),
            WHY,
        );
    };
    let Some(f) = &d.sync_fallocated else {
        let why_not = d
            .error
            .clone()
            .unwrap_or_else(|| "probe skipped (--probe-seconds 0)".to_string());
        return check("fsync_latency", Status::Unknown, why_not, WHY);
    };
    let mode = if f.direct_io {
        "O_DIRECT".to_string()
    } else {
        format!(
            "buffered; O_DIRECT refused: {}",
            f.direct_io_error.as_deref().unwrap_or("unknown")
        )
    };
    let describe = |s: &SyncLatency| {
        format!(
            "p50 {}, p99 {}, max {}, {:.0} syncs/s over {} appends{}",
            human_us(s.p50_us),
            human_us(s.p99_us),
            human_us(s.max_us),
            s.syncs_per_second,
            s.samples,
            if s.stopped_at_file_end {
                " (file full)"
            } else {
                ""
            }
        )
    };
    let mut found = format!(
        "4 KiB append + fdatasync ({mode}): into fallocated space (the log today) {}",
        describe(f)
    );
    if let Some(w) = &d.sync_written {
        found.push_str(&format!(
            "; over written blocks (the device) {}",
            describe(w)
        ));
        if w.p50_us > 0.0 && f.p50_us / w.p50_us >= 2.0 {
            found.push_str(&format!(
                "; fallocated space costs {:.1}x per sync at p50",
                f.p50_us / w.p50_us
            ));
        }
    }
    if let Some(p) = busy(d).filter(|_| !d.in_memory) {
        found.push_str(&p);
    }
    if d.in_memory {
        found.push_str("; MEANINGLESS: the directory is in memory, fdatasync does nothing");
        return check("fsync_latency", Status::Warn, found, WHY)
            .fix("measure on the disk that will hold dataLogDir");
    }
    let status = if f.p99_us > SYNC_P99_FAIL_US {
        Status::Fail
    } else if f.p99_us > SYNC_P99_OK_US {
        Status::Warn
    } else {
        Status::Ok
    };
    if status == Status::Ok {
        return check("fsync_latency", status, found, WHY);
    }
    let device_is_fine = d
        .sync_written
        .as_ref()
        .is_some_and(|w| w.p99_us <= SYNC_P99_OK_US);
    let mut fix = if device_is_fine {
        "the device itself is fast enough (see written blocks): the extra is the filesystem \
         committing its journal to convert fallocated extents on their first write. Nothing to \
         change on the host; ferrokeeper's log avoids it once segments are zero-filled ahead \
         of use (storage: segment_zero_fill, prepared off the commit path)"
            .to_string()
    } else {
        "put dataLogDir on its own SSD or NVMe (drives with power-loss protection sync \
         fastest), and keep other fsyncing processes (databases, journald) off that disk"
            .to_string()
    };
    if busy(d).is_some() {
        fix.push_str("; first measure again on a quiet host");
    }
    check("fsync_latency", status, found, WHY).fix(fix)
}

/// A note when the host was busy before the probe, so the numbers may understate the disk.
fn busy(d: &DiskReport) -> Option<String> {
    let p = d.pressure_before?;
    let io = p.io_some_avg10.unwrap_or(0.0);
    let cpu = p.cpu_some_avg10.unwrap_or(0.0);
    d.measured_on_busy_host().then(|| {
        format!(
            "; NOTE the host was busy before the probe (tasks waiting: {io:.1}% of the time for \
             IO, {cpu:.1}% for a CPU), so these numbers may understate the disk"
        )
    })
}

fn group_commit(disk: Option<&DiskReport>) -> Check {
    const WHY: &str = "ferrokeeper acknowledges a write only after its batch is durable; its \
        throughput comes from putting many writes in one fdatasync, so records/s must grow \
        with the batch size";
    let Some(d) = disk.filter(|d| !d.group_commit.is_empty()) else {
        let why_not = disk
            .and_then(|d| d.error.clone())
            .unwrap_or_else(|| "probe skipped (--probe-seconds 0)".to_string());
        return check("group_commit", Status::Unknown, why_not, WHY);
    };
    let mut found = d
        .group_commit
        .iter()
        .map(|g| {
            format!(
                "{} x {} B: {:.0} records/s ({:.0} syncs/s, batch p50 {}, p99 {})",
                g.batch_records,
                g.record_bytes,
                g.records_per_second,
                g.batches_per_second,
                human_us(g.batch_p50_us),
                human_us(g.batch_p99_us)
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    if let Some(p) = busy(d).filter(|_| !d.in_memory) {
        found.push_str(&p);
    }
    if d.in_memory {
        found.push_str("; MEANINGLESS: the directory is in memory");
        return check("group_commit", Status::Warn, found, WHY)
            .fix("measure on the disk that will hold dataLogDir");
    }
    let smallest = d.group_commit.iter().min_by_key(|g| g.batch_records);
    let largest = d.group_commit.iter().max_by_key(|g| g.batch_records);
    if let (Some(s), Some(l)) = (smallest, largest) {
        if l.batch_records > s.batch_records && s.records_per_second > 0.0 {
            let gain = l.records_per_second / s.records_per_second;
            found.push_str(&format!(
                "; batching {}x gives {gain:.1}x the records/s",
                l.batch_records / s.batch_records
            ));
            if gain < GROUP_COMMIT_GAIN_MIN {
                return check("group_commit", Status::Warn, found, WHY).fix(
                    "the disk's sync cost grows with the bytes synced (bandwidth-bound): \
                     batching cannot help much; use a faster disk for dataLogDir",
                );
            }
        }
    }
    check("group_commit", Status::Ok, found, WHY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use crate::host::{ClocksourceReport, CpuGovernor, ThpReport};

    fn run(host: &HostReport) -> Vec<Check> {
        evaluate(host, &Targets::default())
    }

    fn get<'a>(checks: &'a [Check], name: &str) -> &'a Check {
        checks
            .iter()
            .find(|c| c.name == name)
            .expect("check exists")
    }

    fn status_of(host: &HostReport, name: &str) -> Status {
        get(&run(host), name).status
    }

    #[test]
    fn healthy_host_has_every_check_and_no_warning() {
        let checks = run(&fixtures::host());
        let names: Vec<_> = checks.iter().map(|c| c.name).collect();
        assert_eq!(names, CHECK_NAMES);
        for c in &checks {
            // The fixture is a VM: no cpufreq is "unknown", never "fail".
            let expected = if c.name == "cpu_governor" {
                Status::Unknown
            } else {
                Status::Ok
            };
            assert_eq!(c.status, expected, "{c:?}");
            assert!(!c.why.is_empty() && !c.found.is_empty());
        }
        assert_eq!(worst(&checks), Status::Unknown);
    }

    #[test]
    fn every_non_ok_check_says_how_to_fix_it() {
        let mut h = fixtures::host();
        h.io_uring.ring_created = false;
        h.io_uring.disabled_sysctl = Some(2);
        h.memlock.soft = Some(64 * 1024);
        h.nofile.soft = Some(1024);
        h.somaxconn = Some(128);
        h.tcp_max_syn_backlog = Some(256);
        h.thp = Some(ThpReport {
            enabled: Some("always".into()),
            defrag: Some("always".into()),
        });
        h.governors = vec![CpuGovernor {
            cpu: 0,
            governor: "powersave".into(),
        }];
        h.clocksource = Some(ClocksourceReport {
            current: "hpet".into(),
            available: vec!["hpet".into(), "acpi_pm".into()],
        });
        h.swap_total_kib = Some(1 << 20);
        h.swappiness = Some(60);
        h.cpus.numa_nodes = Some(2);
        let checks = run(&h);
        for c in checks.iter().take(10) {
            assert!(matches!(c.status, Status::Warn | Status::Fail), "{c:?}");
            assert!(c.fix.is_some(), "{} has no fix", c.name);
        }
    }

    #[test]
    fn io_uring_disabled_by_sysctl_fails_with_the_sysctl_fix() {
        let mut h = fixtures::host();
        h.io_uring.ring_created = false;
        h.io_uring.error = Some("io_uring_setup: Operation not permitted (os error 1)".into());
        h.io_uring.disabled_sysctl = Some(2);
        let c = get(&run(&h), "io_uring").clone();
        assert_eq!(c.status, Status::Fail);
        assert!(c.fix.unwrap().contains("kernel.io_uring_disabled=0"));
        // Allowed by the kernel but still refused: a seccomp filter.
        h.io_uring.disabled_sysctl = Some(0);
        let c = get(&run(&h), "io_uring").clone();
        assert!(c.fix.unwrap().contains("seccomp"));
        // Group-restricted but usable by us: a warning about the server's user.
        h.io_uring.ring_created = true;
        h.io_uring.error = None;
        h.io_uring.disabled_sysctl = Some(1);
        assert_eq!(status_of(&h, "io_uring"), Status::Warn);
    }

    #[test]
    fn io_uring_needs_linux_5_8() {
        let mut h = fixtures::host();
        h.kernel_release = Some("5.4.0-150-generic".into());
        assert_eq!(status_of(&h, "io_uring"), Status::Fail);
        h.kernel_release = Some("5.8.0".into());
        assert_eq!(status_of(&h, "io_uring"), Status::Ok);
        h.io_uring.unsupported_opcodes = vec!["send".into()];
        assert_eq!(status_of(&h, "io_uring"), Status::Fail);
    }

    #[test]
    fn memlock_counts_executors_and_root_bypasses() {
        let mut h = fixtures::host();
        h.cpus.usable = 8; // 7 shards + commit stage = 8 executors = 4 MiB.
        h.memlock.soft = Some(4 * 1024 * 1024 - 1);
        assert_eq!(status_of(&h, "memlock"), Status::Fail);
        h.memlock.soft = Some(4 * 1024 * 1024);
        assert_eq!(status_of(&h, "memlock"), Status::Ok);
        h.memlock.soft = Some(64 * 1024);
        h.effective_uid = 0;
        assert_eq!(status_of(&h, "memlock"), Status::Ok);
        h.effective_uid = 1000;
        h.cap_ipc_lock = Some(true);
        assert_eq!(status_of(&h, "memlock"), Status::Ok);
        h.cap_ipc_lock = Some(false);
        h.memlock.soft = None;
        assert_eq!(status_of(&h, "memlock"), Status::Ok);
    }

    #[test]
    fn open_files_against_expected_connections() {
        let mut h = fixtures::host();
        let t = Targets {
            expected_connections: 10_000,
            ..Targets::default()
        };
        h.nofile.soft = Some(10_256);
        assert_eq!(get(&evaluate(&h, &t), "open_files").status, Status::Ok);
        h.nofile.soft = Some(1024);
        h.nofile.hard = Some(524_288);
        let c = get(&evaluate(&h, &t), "open_files").clone();
        assert_eq!(c.status, Status::Warn);
        assert!(c
            .fix
            .unwrap()
            .starts_with("the hard limit allows it: ulimit -n 10256"));
        h.nofile.hard = Some(4096);
        let c = get(&evaluate(&h, &t), "open_files").clone();
        assert!(c.fix.unwrap().contains("raise the hard limit"));
        h.nofile.soft = Some(200);
        assert_eq!(get(&evaluate(&h, &t), "open_files").status, Status::Fail);
    }

    #[test]
    fn listen_queues() {
        let mut h = fixtures::host();
        h.somaxconn = Some(1023);
        h.tcp_max_syn_backlog = Some(128);
        assert_eq!(status_of(&h, "somaxconn"), Status::Warn);
        assert_eq!(status_of(&h, "tcp_max_syn_backlog"), Status::Warn);
        h.somaxconn = Some(1024);
        h.tcp_max_syn_backlog = Some(1024);
        assert_eq!(status_of(&h, "somaxconn"), Status::Ok);
        assert_eq!(status_of(&h, "tcp_max_syn_backlog"), Status::Ok);
        h.somaxconn = None;
        assert_eq!(status_of(&h, "somaxconn"), Status::Unknown);
    }

    #[test]
    fn thp_always_warns_madvise_and_never_pass() {
        let mut h = fixtures::host();
        for (enabled, status) in [
            ("always", Status::Warn),
            ("madvise", Status::Ok),
            ("never", Status::Ok),
        ] {
            h.thp = Some(ThpReport {
                enabled: Some(enabled.into()),
                defrag: Some("madvise".into()),
            });
            assert_eq!(status_of(&h, "transparent_hugepages"), status, "{enabled}");
        }
        h.thp = None;
        assert_eq!(status_of(&h, "transparent_hugepages"), Status::Ok);
    }

    #[test]
    fn governor_absent_is_unknown_not_fail() {
        let mut h = fixtures::host();
        h.governors.clear();
        assert_eq!(status_of(&h, "cpu_governor"), Status::Unknown);
        let gov = |cpu, g: &str| CpuGovernor {
            cpu,
            governor: g.into(),
        };
        h.governors = vec![gov(0, "performance"), gov(1, "performance")];
        assert_eq!(status_of(&h, "cpu_governor"), Status::Ok);
        h.governors = vec![gov(0, "performance"), gov(1, "schedutil")];
        let c = get(&run(&h), "cpu_governor").clone();
        assert_eq!(c.status, Status::Warn);
        assert_eq!(c.found, "performance on 1 CPU(s), schedutil on 1 CPU(s)");
    }

    #[test]
    fn clocksource_tsc_is_good_others_warn() {
        let mut h = fixtures::host();
        let cs = |cur: &str, avail: &[&str]| {
            Some(ClocksourceReport {
                current: cur.into(),
                available: avail.iter().map(|s| s.to_string()).collect(),
            })
        };
        h.clocksource = cs("tsc", &["tsc", "hpet"]);
        assert_eq!(status_of(&h, "clocksource"), Status::Ok);
        h.clocksource = cs("arch_sys_counter", &["arch_sys_counter"]);
        assert_eq!(status_of(&h, "clocksource"), Status::Ok);
        h.clocksource = cs("kvm-clock", &["kvm-clock", "tsc", "acpi_pm"]);
        let c = get(&run(&h), "clocksource").clone();
        assert_eq!(c.status, Status::Warn);
        assert!(c.fix.unwrap().starts_with("echo tsc >"));
        h.clocksource = cs("xen", &["xen"]);
        let c = get(&run(&h), "clocksource").clone();
        assert!(c.fix.unwrap().contains("nothing to change"));
    }

    #[test]
    fn swappiness_matters_only_with_swap() {
        let mut h = fixtures::host();
        h.swappiness = Some(60);
        h.swap_total_kib = Some(0);
        assert_eq!(status_of(&h, "swappiness"), Status::Ok);
        h.swap_total_kib = Some(2 << 20);
        assert_eq!(status_of(&h, "swappiness"), Status::Warn);
        h.swappiness = Some(1);
        assert_eq!(status_of(&h, "swappiness"), Status::Ok);
    }

    #[test]
    fn cpus_and_numa() {
        let mut h = fixtures::host();
        h.cpus.usable = 1;
        assert_eq!(status_of(&h, "cpus_numa"), Status::Warn);
        h.cpus.usable = 16;
        h.cpus.numa_nodes = Some(2);
        assert_eq!(status_of(&h, "cpus_numa"), Status::Warn);
        h.cpus.numa_nodes = None;
        assert_eq!(status_of(&h, "cpus_numa"), Status::Ok);
    }

    #[test]
    fn tmpfs_data_dir_fails_and_its_numbers_are_called_meaningless() {
        let mut h = fixtures::host();
        let mut d = fixtures::disk();
        d.filesystem = Some("tmpfs".into());
        d.in_memory = true;
        d.device = None;
        h.disk = Some(d);
        let checks = run(&h);
        assert_eq!(get(&checks, "data_dir_filesystem").status, Status::Fail);
        let f = get(&checks, "fsync_latency");
        assert_eq!(f.status, Status::Warn);
        assert!(f.found.contains("MEANINGLESS"));
        assert!(get(&checks, "group_commit").found.contains("MEANINGLESS"));
    }

    #[test]
    fn filesystem_warnings_accumulate() {
        let mut h = fixtures::host();
        let mut d = fixtures::disk();
        d.filesystem = Some("btrfs".into());
        d.free_bytes = Some(1 << 30);
        h.disk = Some(d.clone());
        let c = get(&run(&h), "data_dir_filesystem").clone();
        assert_eq!(c.status, Status::Warn);
        let fix = c.fix.unwrap();
        assert!(fix.contains("copy-on-write") && fix.contains("2 GiB"));
        // A directory that does not exist: statfs failed.
        d.filesystem = None;
        d.error = Some("cannot statfs /nope: No such file or directory (os error 2)".into());
        h.disk = Some(d);
        let c = get(&run(&h), "data_dir_filesystem").clone();
        assert_eq!(c.status, Status::Fail);
        assert!(c.fix.unwrap().contains("mkdir -p"));
    }

    #[test]
    fn sync_latency_thresholds() {
        let mut h = fixtures::host();
        for (p99, status) in [
            (600.0, Status::Ok),
            (2_000.0, Status::Ok),
            (2_001.0, Status::Warn),
            (10_000.0, Status::Warn),
            (10_001.0, Status::Fail),
        ] {
            let mut d = fixtures::disk();
            d.sync_fallocated.as_mut().unwrap().p99_us = p99;
            h.disk = Some(d);
            assert_eq!(status_of(&h, "fsync_latency"), status, "p99 {p99}");
        }
        let mut d = fixtures::disk();
        d.sync_fallocated = None;
        h.disk = Some(d);
        assert_eq!(status_of(&h, "fsync_latency"), Status::Unknown);
    }

    #[test]
    fn slow_fallocated_syncs_on_a_fast_device_blame_the_extents_not_the_disk() {
        let mut h = fixtures::host();
        let mut d = fixtures::disk();
        // Measured on the development VM: ~1.5 ms into fallocated space, ~150 µs written.
        d.sync_fallocated.as_mut().unwrap().p50_us = 1_500.0;
        d.sync_fallocated.as_mut().unwrap().p99_us = 8_000.0;
        h.disk = Some(d.clone());
        let c = get(&run(&h), "fsync_latency").clone();
        assert_eq!(c.status, Status::Warn);
        assert!(c.found.contains("costs 10.0x"), "{}", c.found);
        assert!(c.fix.as_deref().unwrap().contains("zero-filled"));
        // A slow device: the disk is to blame.
        d.sync_written.as_mut().unwrap().p99_us = 7_000.0;
        h.disk = Some(d);
        let c = get(&run(&h), "fsync_latency").clone();
        assert!(c.fix.as_deref().unwrap().contains("SSD"));
    }

    #[test]
    fn a_busy_host_is_named_in_the_disk_numbers() {
        let mut h = fixtures::host();
        let mut d = fixtures::disk();
        d.pressure_before = Some(crate::probe::Pressure {
            io_some_avg10: Some(0.7),
            cpu_some_avg10: Some(20.5),
        });
        h.disk = Some(d);
        let checks = run(&h);
        assert!(get(&checks, "fsync_latency").found.contains("busy"));
        assert!(get(&checks, "group_commit").found.contains("busy"));
    }

    #[test]
    fn virtual_disks_are_not_called_spinning() {
        let mut h = fixtures::host();
        let mut d = fixtures::disk();
        d.device.as_mut().unwrap().rotational = Some(true);
        h.disk = Some(d.clone());
        let c = get(&run(&h), "data_dir_filesystem").clone();
        assert_eq!(c.status, Status::Ok, "{c:?}");
        assert!(c.found.contains("virtual disk"));
        let dev = d.device.as_mut().unwrap();
        dev.name = "sdb".into();
        dev.driver = Some("sd".into());
        h.disk = Some(d);
        assert_eq!(status_of(&h, "data_dir_filesystem"), Status::Warn);
    }

    #[test]
    fn group_commit_must_scale_with_batch_size() {
        let mut h = fixtures::host();
        let mut d = fixtures::disk();
        d.group_commit = vec![
            fixtures::group_commit(1, 4_000.0),
            fixtures::group_commit(256, 12_000.0),
        ];
        h.disk = Some(d.clone());
        assert_eq!(status_of(&h, "group_commit"), Status::Warn);
        d.group_commit[1] = fixtures::group_commit(256, 400_000.0);
        h.disk = Some(d);
        let c = get(&run(&h), "group_commit").clone();
        assert_eq!(c.status, Status::Ok);
        assert!(c.found.contains("batching 256x gives 100.0x"));
    }

    #[test]
    fn fallocate_failure_warns() {
        let mut h = fixtures::host();
        let mut d = fixtures::disk();
        d.fallocate = Some(crate::probe::Fallocate {
            works: false,
            error: Some("Operation not supported (os error 95)".into()),
        });
        h.disk = Some(d);
        assert_eq!(status_of(&h, "fallocate"), Status::Warn);
    }

    #[test]
    fn human_units() {
        assert_eq!(human_us(230.4), "230 µs");
        assert_eq!(human_us(4_100.0), "4.1 ms");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
        assert_eq!(human_bytes(512 << 20), "512 MiB");
    }
}
