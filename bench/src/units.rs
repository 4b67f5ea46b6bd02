//! How the bench writes its numbers: latencies in the unit that reads best, CPU time per
//! op in µs. The runners print these as they go and the report uses the same forms, so
//! they sit below both.

/// A latency in ns, in the unit that reads best.
pub fn fmt_latency(ns: u64) -> String {
    let ns = ns as f64;
    if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.0} µs", ns / 1e3)
    }
}

/// CPU µs per op.
pub fn per_op_us(cpu_ns: u64, ops: u64) -> f64 {
    if ops == 0 {
        return f64::NAN;
    }
    cpu_ns as f64 / 1e3 / ops as f64
}
