//! What one run measured, and the readings of a process's CPU time and memory from
//! `/proc` that go with it.

use std::io;

use hdrhistogram::Histogram;

/// Highest latency the histograms hold: one hour, in nanoseconds.
pub const LATENCY_NS_MAX: u64 = 3_600 * 1_000_000_000;

/// An empty latency histogram (nanoseconds, 3 significant digits).
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_NS_MAX, 3).expect("valid histogram bounds")
}

/// The measurements of one run of one workload against one server.
#[derive(Debug, Clone)]
pub struct RunStats {
    /// Operations completed inside the measurement window.
    pub ops: u64,
    /// Replies with an error code where success was expected (all of the run, not only
    /// the window), plus connection failures.
    pub errors: u64,
    /// The first error, for the report.
    pub first_error: Option<String>,
    /// Latency of the operations completed inside the window, in ns: from the send (closed
    /// loop) or from the intended send time (fixed rate).
    pub latency: Histogram<u64>,
    /// Length of the measurement window, ns.
    pub window_ns: u64,
    /// CPU time (user + system) the load generator used in the window, ns.
    pub client_cpu_ns: u64,
    /// CPU time the server used in the window, ns (`None` when no server pid is known).
    pub server_cpu_ns: Option<u64>,
    /// Requests still unanswered when the run gave up waiting for them.
    pub unanswered: u64,
    /// Fixed rate only: how late each request went out after its intended send time, ns
    /// (the session's window was full, or the client was not scheduled). When this tail
    /// is as long as the latency tail, the client or the machine made it, not the server.
    pub send_lag: Histogram<u64>,
    /// The longest time any one worker went without a completion inside the window, ns:
    /// a stall shows here even when the percentiles hide it.
    pub max_gap_ns: u64,
}

impl RunStats {
    /// Stats with nothing measured yet.
    pub fn empty() -> RunStats {
        RunStats {
            ops: 0,
            errors: 0,
            first_error: None,
            latency: latency_histogram(),
            send_lag: latency_histogram(),
            window_ns: 0,
            client_cpu_ns: 0,
            server_cpu_ns: None,
            unanswered: 0,
            max_gap_ns: 0,
        }
    }

    /// Operations per second over the window.
    pub fn ops_per_sec(&self) -> f64 {
        if self.window_ns == 0 {
            return 0.0;
        }
        self.ops as f64 * 1e9 / self.window_ns as f64
    }

    /// Records an error (keeping the first message).
    pub fn error(&mut self, message: impl FnOnce() -> String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(message());
        }
    }

    /// Adds another worker's counts and latencies (same window).
    pub fn merge_worker(&mut self, other: &RunStats) {
        self.ops += other.ops;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error.clone_from(&other.first_error);
        }
        self.latency
            .add(&other.latency)
            .expect("histograms of the same bounds");
        self.send_lag
            .add(&other.send_lag)
            .expect("histograms of the same bounds");
        self.unanswered += other.unanswered;
        self.max_gap_ns = self.max_gap_ns.max(other.max_gap_ns);
    }

    /// Adds another run (another round): windows, CPU and counts add up.
    pub fn merge_round(&mut self, other: &RunStats) {
        self.merge_worker(other);
        self.window_ns += other.window_ns;
        self.client_cpu_ns += other.client_cpu_ns;
        self.server_cpu_ns = match (self.server_cpu_ns, other.server_cpu_ns) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
    }
}

/// One server's side of a workload.
#[derive(Debug, Clone)]
pub struct Side {
    /// All rounds merged.
    pub stats: RunStats,
    /// RSS after the last round, bytes.
    pub rss_bytes: Option<u64>,
}

impl Side {
    /// No runs yet, no RSS reading.
    pub fn empty() -> Side {
        Side {
            stats: RunStats::empty(),
            rss_bytes: None,
        }
    }
}

/// CPU time of a process, user + system, in ns, from `/proc/<pid>/stat` (`utime` and
/// `stime`, fields 14 and 15, in clock ticks). Includes threads that have exited.
pub fn process_cpu_ns(pid: u32) -> io::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) is in parentheses and may hold spaces: count fields
    // from the last ')'. After it come fields 3 (state), 4, ...: utime is the 12th.
    let after = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .ok_or_else(|| io::Error::other("no ')' in /proc/pid/stat"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |n: usize| -> io::Result<u64> {
        fields
            .get(n - 3)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| io::Error::other(format!("bad field {n} in /proc/{pid}/stat")))
    };
    let ticks = field(14)? + field(15)?;
    Ok(ticks * 1_000_000_000 / clock_ticks_per_sec())
}

/// CPU time of this process, in ns.
pub fn self_cpu_ns() -> u64 {
    process_cpu_ns(std::process::id()).unwrap_or(0)
}

fn clock_ticks_per_sec() -> u64 {
    // SAFETY: sysconf reads a constant.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// Resident memory of a process in bytes, from `VmRSS` in `/proc/<pid>/status`.
pub fn process_rss_bytes(pid: u32) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    for line in status.lines() {
        if let Some(rest) = line.strip_prefix("VmRSS:") {
            let kb: u64 = rest
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .map_err(|_| io::Error::other(format!("bad VmRSS line {line:?}")))?;
            return Ok(kb * 1024);
        }
    }
    Err(io::Error::other("no VmRSS in /proc/pid/status"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_cpu_and_rss() {
        let pid = std::process::id();
        let mut x = 0u64;
        for i in 0..3_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(x != 1);
        assert!(process_cpu_ns(pid).is_ok());
        assert!(process_rss_bytes(pid).expect("rss") > 0);
    }
}
