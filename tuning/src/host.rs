//! What the host is: the facts the checks and the recommendations are computed from.
//!
//! [`HostReport`] is plain data. [`HostReport::gather`] fills it from `/proc`, `/sys` and a
//! few system calls (cheap: no disk probe, well under a millisecond plus one io_uring ring
//! setup); the disk probe ([`crate::probe`]) adds [`HostReport::disk`]. Tests build a
//! `HostReport` by hand, so that every rule is tested without depending on this host.

use std::path::Path;

use serde::Serialize;

use crate::parse;
use crate::probe::DiskReport;
use crate::sysfs::read;

/// Everything the tuner learned about the host. Fields are `None` where the source was
/// absent or unreadable (a container without `/sys`, a kernel without the setting).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostReport {
    /// `uname -r`.
    pub kernel_release: Option<String>,
    /// The effective user id of the tuner; 0 is root, which bypasses RLIMIT_MEMLOCK and
    /// may write sysctls.
    pub effective_uid: u32,
    /// Whether the process has `CAP_IPC_LOCK` (lock memory beyond RLIMIT_MEMLOCK).
    pub cap_ipc_lock: Option<bool>,
    /// CPUs and NUMA nodes.
    pub cpus: CpuReport,
    /// Whether io_uring can be used.
    pub io_uring: IoUringReport,
    /// `RLIMIT_NOFILE` of this process (a server started the same way inherits the same).
    pub nofile: Rlimit,
    /// `RLIMIT_MEMLOCK` of this process, in bytes.
    pub memlock: Rlimit,
    /// `net.core.somaxconn`: the kernel's cap on any `listen(2)` backlog.
    pub somaxconn: Option<u64>,
    /// `net.ipv4.tcp_max_syn_backlog`: half-open connections queued per listener.
    pub tcp_max_syn_backlog: Option<u64>,
    /// `net.ipv4.tcp_syncookies` (what happens when the SYN queue is full).
    pub tcp_syncookies: Option<u64>,
    /// Transparent huge pages; `None` if the kernel has no THP.
    pub thp: Option<ThpReport>,
    /// The frequency governor of each CPU that has one. Empty when the kernel exposes no
    /// cpufreq (typical of virtual machines, where the hypervisor owns the frequency).
    pub governors: Vec<CpuGovernor>,
    /// The clock source behind `clock_gettime`.
    pub clocksource: Option<ClocksourceReport>,
    /// `vm.swappiness`.
    pub swappiness: Option<u64>,
    /// Swap configured (`SwapTotal` of `/proc/meminfo`), in KiB.
    pub swap_total_kib: Option<u64>,
    /// Memory (`MemTotal`), in KiB.
    pub memory_total_kib: Option<u64>,
    /// The data directory's filesystem and the disk probe's measurements; `None` until
    /// [`crate::probe::run`] has run.
    pub disk: Option<DiskReport>,
}

/// CPUs and NUMA nodes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CpuReport {
    /// CPUs online (`/sys/devices/system/cpu/online`).
    pub online: Option<usize>,
    /// CPUs this process may use: `std::thread::available_parallelism`, which honours the
    /// affinity mask and a cgroup CPU quota. The server sizes its shards from the same
    /// number, so the recommendation is computed from it.
    pub usable: usize,
    /// NUMA nodes online (`/sys/devices/system/node/online`); `None` on a kernel built
    /// without NUMA.
    pub numa_nodes: Option<usize>,
}

/// Whether io_uring works, and why not.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IoUringReport {
    /// `kernel.io_uring_disabled` (Linux 6.6+): 0 all may use io_uring, 1 only members
    /// of `kernel.io_uring_group` and CAP_SYS_ADMIN, 2 nobody. `None` on older kernels.
    pub disabled_sysctl: Option<u64>,
    /// Whether creating a ring succeeded.
    pub ring_created: bool,
    /// The error of `io_uring_setup(2)` (or of the opcode probe) when it failed.
    pub error: Option<String>,
    /// Operations ferrokeeper issues that this kernel's io_uring does not support.
    pub unsupported_opcodes: Vec<String>,
}

/// A resource limit. `None` means unlimited (`RLIM_INFINITY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rlimit {
    /// The soft limit: what the process gets.
    pub soft: Option<u64>,
    /// The hard limit: how far an unprivileged process may raise the soft limit.
    pub hard: Option<u64>,
}

/// Transparent huge page settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThpReport {
    /// `/sys/kernel/mm/transparent_hugepage/enabled`: `always`, `madvise` or `never`.
    pub enabled: Option<String>,
    /// `/sys/kernel/mm/transparent_hugepage/defrag`: when a page fault may stall to compact.
    pub defrag: Option<String>,
}

/// One CPU's frequency governor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CpuGovernor {
    /// The CPU number.
    pub cpu: usize,
    /// `scaling_governor`, for example `performance` or `powersave`.
    pub governor: String,
}

/// The clock source.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClocksourceReport {
    /// `current_clocksource`.
    pub current: String,
    /// `available_clocksource`.
    pub available: Vec<String>,
}

/// io_uring operations ferrokeeper depends on (glommio's network and file IO, and the
/// transaction log's write + fdatasync), with their names for the report.
const REQUIRED_OPCODES: [(u8, &str); 8] = [
    (io_uring::opcode::Read::CODE, "read"),
    (io_uring::opcode::Write::CODE, "write"),
    (io_uring::opcode::Fsync::CODE, "fsync"),
    (io_uring::opcode::Accept::CODE, "accept"),
    (io_uring::opcode::Recv::CODE, "recv"),
    (io_uring::opcode::Send::CODE, "send"),
    (io_uring::opcode::Timeout::CODE, "timeout"),
    (io_uring::opcode::AsyncCancel::CODE, "async_cancel"),
];

impl HostReport {
    /// Reads the host's settings. Touches no disk beyond `/proc` and `/sys`, and creates
    /// (and drops) one small io_uring ring.
    pub fn gather() -> HostReport {
        let status = read("/proc/self/status");
        let meminfo = read("/proc/meminfo");
        HostReport {
            kernel_release: kernel_release(),
            // SAFETY: geteuid has no preconditions and cannot fail.
            effective_uid: unsafe { libc::geteuid() },
            cap_ipc_lock: status
                .as_deref()
                .and_then(|s| parse::has_effective_capability(s, parse::CAP_IPC_LOCK_BIT)),
            cpus: CpuReport {
                online: read("/sys/devices/system/cpu/online")
                    .as_deref()
                    .and_then(parse::cpu_list_len),
                usable: std::thread::available_parallelism().map_or(1, |n| n.get()),
                numa_nodes: read("/sys/devices/system/node/online")
                    .as_deref()
                    .and_then(parse::cpu_list_len),
            },
            io_uring: probe_io_uring(),
            nofile: rlimit(libc::RLIMIT_NOFILE),
            memlock: rlimit(libc::RLIMIT_MEMLOCK),
            somaxconn: sysctl("/proc/sys/net/core/somaxconn"),
            tcp_max_syn_backlog: sysctl("/proc/sys/net/ipv4/tcp_max_syn_backlog"),
            tcp_syncookies: sysctl("/proc/sys/net/ipv4/tcp_syncookies"),
            thp: thp(),
            governors: governors(),
            clocksource: read("/sys/devices/system/clocksource/clocksource0/current_clocksource")
                .as_deref()
                .and_then(parse::word)
                .map(|current| ClocksourceReport {
                    current,
                    available: read(
                        "/sys/devices/system/clocksource/clocksource0/available_clocksource",
                    )
                    .as_deref()
                    .map(parse::words)
                    .unwrap_or_default(),
                }),
            swappiness: sysctl("/proc/sys/vm/swappiness"),
            swap_total_kib: meminfo
                .as_deref()
                .and_then(|m| parse::meminfo_kib(m, "SwapTotal")),
            memory_total_kib: meminfo
                .as_deref()
                .and_then(|m| parse::meminfo_kib(m, "MemTotal")),
            disk: None,
        }
    }

    /// Whether the tuner runs as root (effective uid 0).
    pub fn is_root(&self) -> bool {
        self.effective_uid == 0
    }
}

fn sysctl(path: &str) -> Option<u64> {
    read(path).as_deref().and_then(parse::sysctl_u64)
}

fn kernel_release() -> Option<String> {
    read("/proc/sys/kernel/osrelease").and_then(|s| parse::word(&s))
}

fn rlimit(resource: libc::__rlimit_resource_t) -> Rlimit {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit for the duration of the call.
    if unsafe { libc::getrlimit(resource, &mut lim) } != 0 {
        return Rlimit {
            soft: None,
            hard: None,
        };
    }
    let finite = |v: libc::rlim_t| (v != libc::RLIM_INFINITY).then_some(v);
    Rlimit {
        soft: finite(lim.rlim_cur),
        hard: finite(lim.rlim_max),
    }
}

fn thp() -> Option<ThpReport> {
    let dir = Path::new("/sys/kernel/mm/transparent_hugepage");
    if !dir.exists() {
        return None;
    }
    Some(ThpReport {
        enabled: read(dir.join("enabled"))
            .as_deref()
            .and_then(parse::bracketed_choice),
        defrag: read(dir.join("defrag"))
            .as_deref()
            .and_then(parse::bracketed_choice),
    })
}

fn governors() -> Vec<CpuGovernor> {
    let Ok(entries) = std::fs::read_dir("/sys/devices/system/cpu") else {
        return Vec::new();
    };
    let mut found: Vec<CpuGovernor> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name();
            let cpu: usize = name.to_str()?.strip_prefix("cpu")?.parse().ok()?;
            let governor = read(e.path().join("cpufreq/scaling_governor"))
                .as_deref()
                .and_then(parse::word)?;
            Some(CpuGovernor { cpu, governor })
        })
        .collect();
    found.sort_by_key(|g| g.cpu);
    found
}

/// Creates a ring the way glommio does (a plain `io_uring_setup`), then asks the kernel
/// which operations it supports.
fn probe_io_uring() -> IoUringReport {
    let disabled_sysctl = sysctl("/proc/sys/kernel/io_uring_disabled");
    let ring = match io_uring::IoUring::new(8) {
        Ok(ring) => ring,
        Err(e) => {
            return IoUringReport {
                disabled_sysctl,
                ring_created: false,
                error: Some(format!("io_uring_setup: {e}")),
                unsupported_opcodes: Vec::new(),
            }
        }
    };
    let mut probe = io_uring::Probe::new();
    let (error, unsupported_opcodes) = match ring.submitter().register_probe(&mut probe) {
        Ok(()) => (
            None,
            REQUIRED_OPCODES
                .iter()
                .filter(|(code, _)| !probe.is_supported(*code))
                .map(|(_, name)| name.to_string())
                .collect(),
        ),
        // IORING_REGISTER_PROBE came with Linux 5.6; glommio needs 5.8 anyway.
        Err(e) => (Some(format!("IORING_REGISTER_PROBE: {e}")), Vec::new()),
    };
    IoUringReport {
        disabled_sysctl,
        ring_created: true,
        error,
        unsupported_opcodes,
    }
}
