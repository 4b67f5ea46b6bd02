//! Pure parsers for the text of `/proc` and `/sys` files.
//!
//! Every function here takes the file's contents as a string and touches nothing, so the
//! tests feed them fixture strings copied from real hosts and never depend on the host the
//! tests run on. Reading the files is `crate::sysfs`'s job.

/// `CAP_IPC_LOCK`'s bit in the capability sets of `/proc/<pid>/status`
/// (`include/uapi/linux/capability.h`). It lets a process lock memory beyond
/// `RLIMIT_MEMLOCK`.
pub const CAP_IPC_LOCK_BIT: u32 = 14;

/// Parses a single integer sysctl value such as the contents of
/// `/proc/sys/net/core/somaxconn` (`"4096\n"`).
pub fn sysctl_u64(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// Counts the CPUs (or NUMA nodes) in a kernel list such as `/sys/devices/system/cpu/online`:
/// `"0-3,8-11,14"` is 9. Returns `None` for text that is not such a list.
pub fn cpu_list_len(text: &str) -> Option<usize> {
    let text = text.trim();
    if text.is_empty() {
        // An empty list is valid (for example `/sys/devices/system/cpu/offline`).
        return Some(0);
    }
    let mut count = 0usize;
    for part in text.split(',') {
        match part.split_once('-') {
            Some((first, last)) => {
                let first: usize = first.trim().parse().ok()?;
                let last: usize = last.trim().parse().ok()?;
                if last < first {
                    return None;
                }
                count += last - first + 1;
            }
            None => {
                part.trim().parse::<usize>().ok()?;
                count += 1;
            }
        }
    }
    Some(count)
}

/// The selected value of a `/sys` "choice" file such as
/// `/sys/kernel/mm/transparent_hugepage/enabled`: in `"always [madvise] never"` it is
/// `madvise`, the word in brackets.
pub fn bracketed_choice(text: &str) -> Option<String> {
    text.split_whitespace()
        .find_map(|w| w.strip_prefix('[').and_then(|w| w.strip_suffix(']')))
        .map(str::to_string)
}

/// A one-word `/sys` value such as a `scaling_governor` or `current_clocksource`,
/// trimmed; `None` if the file is empty.
pub fn word(text: &str) -> Option<String> {
    let w = text.trim();
    (!w.is_empty()).then(|| w.to_string())
}

/// The whitespace-separated words of a `/sys` list such as `available_clocksource`
/// (`"tsc kvm-clock acpi_pm \n"`).
pub fn words(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_string).collect()
}

/// Whether the effective capability set (`CapEff:` line of `/proc/self/status`, in hex)
/// contains capability `bit`. `None` if the line is missing or malformed.
pub fn has_effective_capability(status: &str, bit: u32) -> Option<bool> {
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))?
        .trim();
    let set = u64::from_str_radix(hex, 16).ok()?;
    Some(bit < 64 && set & (1u64 << bit) != 0)
}

/// A `kB` value of `/proc/meminfo`, for example `"SwapTotal"`. Returns KiB.
pub fn meminfo_kib(meminfo: &str, key: &str) -> Option<u64> {
    meminfo.lines().find_map(|line| {
        let (k, rest) = line.split_once(':')?;
        if k.trim() != key {
            return None;
        }
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// The major and minor version of a kernel release string (`uname -r`), for example
/// `"6.18.44-fc-v769"` is `(6, 18)`.
pub fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.trim().split(['.', '-', '+']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts
        .next()?
        .trim_end_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .ok()?;
    Some((major, minor))
}

/// The name of a filesystem from `statfs(2)`'s `f_type` (the magic numbers of
/// `include/uapi/linux/magic.h` and of out-of-tree filesystems seen on servers).
pub fn filesystem_name(magic: u64) -> Option<&'static str> {
    Some(match magic {
        0xEF53 => "ext4", // ext2, ext3 and ext4 share the magic.
        0x5846_5342 => "xfs",
        0x9123_683E => "btrfs",
        0x2FC1_2FC1 => "zfs",
        0xF2F5_2010 => "f2fs",
        0x0102_1994 => "tmpfs",
        0x8584_58F6 => "ramfs",
        0x794C_7630 => "overlayfs",
        0x6969 => "nfs",
        0xFF53_4D42 => "cifs",
        0xFE53_4D42 => "smb2",
        0x6573_5546 => "fuse",
        0x0102_1997 => "9p",
        0x00C3_6400 => "ceph",
        0x5346_544E => "ntfs",
        0x4d44 => "vfat",
        0x7366_7362 => "squashfs",
        0x6165_6673 => "aufs",
        _ => return None,
    })
}

/// The `some avg10` percentage of a `/proc/pressure/*` file:
/// `"some avg10=0.70 avg60=2.34 avg300=12.53 total=742980602"` gives 0.70.
pub fn psi_some_avg10(text: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.starts_with("some "))?;
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix("avg10="))?
        .parse()
        .ok()
}

/// Whether a block device is virtual (virtio, Xen, Hyper-V, VMware paravirtual), from its
/// kernel name or its driver. Virtual disks report `rotational` = 1 by default whatever
/// backs them, so that flag means nothing for them.
pub fn is_virtual_disk(name: &str, driver: Option<&str>) -> bool {
    name.starts_with("vd")
        || name.starts_with("xvd")
        || matches!(
            driver,
            Some("virtio_blk" | "vbd" | "xen-blkfront" | "hv_storvsc" | "vmw_pvscsi")
        )
}

/// Whether a filesystem keeps its data in memory only, so that `fdatasync` does nothing
/// and nothing survives a reboot.
pub fn is_memory_filesystem(name: &str) -> bool {
    matches!(name, "tmpfs" | "ramfs")
}

#[cfg(test)]
mod tests {
    use super::*;

    // Fixture: /proc/self/status of a root shell in a container (Linux 6.x), trimmed.
    const STATUS_ROOT: &str = "Name:\tbash\nUmask:\t0022\nState:\tS (sleeping)\n\
        Uid:\t0\t0\t0\t0\nCapInh:\t0000000000000000\nCapPrm:\t000001fffeffffff\n\
        CapEff:\t000001fffeffffff\nCapBnd:\t000001fffeffffff\nCapAmb:\t0000000000000000\n";
    // Fixture: an unprivileged user's shell: no effective capabilities.
    const STATUS_USER: &str = "Name:\tbash\nCapInh:\t0000000000000000\n\
        CapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n";
    // Fixture: a service given only CAP_IPC_LOCK (systemd AmbientCapabilities=CAP_IPC_LOCK).
    const STATUS_IPC_LOCK: &str = "CapEff:\t0000000000004000\n";

    const MEMINFO: &str = "MemTotal:       24683656 kB\nMemFree:        1234 kB\n\
        SwapCached:            0 kB\nSwapTotal:       2097148 kB\nSwapFree:        2097148 kB\n";

    #[test]
    fn sysctl_values() {
        assert_eq!(sysctl_u64("4096\n"), Some(4096));
        assert_eq!(sysctl_u64("  60 "), Some(60));
        assert_eq!(sysctl_u64(""), None);
        assert_eq!(sysctl_u64("always"), None);
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(cpu_list_len("0-1\n"), Some(2));
        assert_eq!(cpu_list_len("0\n"), Some(1));
        assert_eq!(cpu_list_len("0-3,8-11,14\n"), Some(9));
        assert_eq!(cpu_list_len("0,2,4,6"), Some(4));
        assert_eq!(cpu_list_len("\n"), Some(0));
        assert_eq!(cpu_list_len("3-1"), None);
        assert_eq!(cpu_list_len("zero"), None);
    }

    #[test]
    fn thp_choice() {
        assert_eq!(
            bracketed_choice("always [madvise] never\n").as_deref(),
            Some("madvise")
        );
        assert_eq!(
            bracketed_choice("[always] madvise never\n").as_deref(),
            Some("always")
        );
        assert_eq!(
            bracketed_choice("always defer defer+madvise [madvise] never\n").as_deref(),
            Some("madvise")
        );
        assert_eq!(bracketed_choice("always madvise never"), None);
    }

    #[test]
    fn words_and_word() {
        assert_eq!(word("performance\n").as_deref(), Some("performance"));
        assert_eq!(word(" \n"), None);
        assert_eq!(
            words("tsc kvm-clock acpi_pm \n"),
            ["tsc", "kvm-clock", "acpi_pm"]
        );
    }

    #[test]
    fn capabilities() {
        assert_eq!(
            has_effective_capability(STATUS_ROOT, CAP_IPC_LOCK_BIT),
            Some(true)
        );
        assert_eq!(
            has_effective_capability(STATUS_USER, CAP_IPC_LOCK_BIT),
            Some(false)
        );
        assert_eq!(
            has_effective_capability(STATUS_IPC_LOCK, CAP_IPC_LOCK_BIT),
            Some(true)
        );
        assert_eq!(
            has_effective_capability("Name:\tbash\n", CAP_IPC_LOCK_BIT),
            None
        );
    }

    #[test]
    fn meminfo() {
        assert_eq!(meminfo_kib(MEMINFO, "SwapTotal"), Some(2_097_148));
        assert_eq!(meminfo_kib(MEMINFO, "MemTotal"), Some(24_683_656));
        // "SwapTotal" must not match "SwapTotalX" or a prefix.
        assert_eq!(meminfo_kib(MEMINFO, "Swap"), None);
    }

    #[test]
    fn kernel_versions() {
        assert_eq!(kernel_version("6.18.44-fc-v769"), Some((6, 18)));
        assert_eq!(kernel_version("5.15.0-91-generic\n"), Some((5, 15)));
        assert_eq!(kernel_version("4.19.0+"), Some((4, 19)));
        assert_eq!(kernel_version("6.8-rc3"), Some((6, 8)));
        assert_eq!(kernel_version("linux"), None);
    }

    #[test]
    fn pressure_stall_information() {
        let io = "some avg10=0.70 avg60=2.34 avg300=12.53 total=742980602\n\
                  full avg10=0.09 avg60=0.50 avg300=2.93 total=100899487\n";
        assert_eq!(psi_some_avg10(io), Some(0.70));
        assert_eq!(
            psi_some_avg10("full avg10=1.00 avg60=0 avg300=0 total=0\n"),
            None
        );
        assert_eq!(psi_some_avg10(""), None);
    }

    #[test]
    fn virtual_disks() {
        assert!(is_virtual_disk("vda", Some("virtio_blk")));
        assert!(is_virtual_disk("vdb", None));
        assert!(is_virtual_disk("xvda", None));
        assert!(is_virtual_disk("sda", Some("hv_storvsc")));
        assert!(!is_virtual_disk("sda", Some("sd")));
        assert!(!is_virtual_disk("nvme0n1", Some("nvme")));
    }

    #[test]
    fn filesystems() {
        assert_eq!(filesystem_name(0xEF53), Some("ext4"));
        assert_eq!(filesystem_name(0x5846_5342), Some("xfs"));
        assert_eq!(filesystem_name(0x0102_1994), Some("tmpfs"));
        assert_eq!(filesystem_name(0x1234_5678), None);
        assert!(is_memory_filesystem("tmpfs"));
        assert!(is_memory_filesystem("ramfs"));
        assert!(!is_memory_filesystem("ext4"));
    }
}
