//! Request latencies as ZooKeeper's `readlatency` and `updatelatency` summaries
//! (`AvgMinMaxPercentileCounter`): count, sum, min, max and percentiles, in ms.
//!
//! Each shard records into its own histogram (an uncontended lock: only an admin
//! gather from another thread ever takes it too); a gather merges them. The percentiles
//! come from an HDR histogram with 2 significant digits, so a percentile is within 1%
//! of the true value; count, sum, min and max are exact.

use std::sync::Mutex;

use hdrhistogram::Histogram;

/// The largest latency recorded as itself; longer ones count as this (an hour).
const LATENCY_MS_MAX: u64 = 3_600_000;

/// Samples of one kind of request.
#[derive(Debug, Clone)]
pub struct Samples {
    /// The distribution, for percentiles.
    pub histogram: Histogram<u64>,
    /// Exact sum, ms.
    pub sum_ms: u64,
    /// Exact minimum, ms (meaningless while the histogram is empty).
    pub min_ms: u64,
    /// Exact maximum, ms.
    pub max_ms: u64,
}

impl Default for Samples {
    fn default() -> Self {
        Samples {
            // Constant, valid bounds: a failure is a bug, not an operating error.
            histogram: Histogram::new_with_bounds(1, LATENCY_MS_MAX, 2)
                .expect("valid histogram bounds"),
            sum_ms: 0,
            min_ms: u64::MAX,
            max_ms: 0,
        }
    }
}

impl Samples {
    /// Adds `other`'s samples.
    pub fn merge(&mut self, other: &Samples) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.histogram.add(&other.histogram);
        self.sum_ms += other.sum_ms;
        self.min_ms = self.min_ms.min(other.min_ms);
        self.max_ms = self.max_ms.max(other.max_ms);
    }

    /// As `mntr` and `/metrics` show it.
    pub fn summary(&self) -> crate::admin::PercentileSummary {
        let h = &self.histogram;
        let count = h.len();
        let at = |q: f64| {
            if count == 0 {
                0
            } else {
                h.value_at_quantile(q)
            }
        };
        crate::admin::PercentileSummary {
            summary: crate::admin::Summary {
                count,
                sum: self.sum_ms,
                min: if count == 0 { 0 } else { self.min_ms },
                max: self.max_ms,
            },
            p50: at(0.5),
            p95: at(0.95),
            p99: at(0.99),
            p999: at(0.999),
        }
    }
}

/// One shard's latencies of one kind.
#[derive(Debug, Default)]
pub struct LatencyHistogram(Mutex<Samples>);

impl LatencyHistogram {
    /// Counts one request that took `ms`. Allocation-free: the histogram's buckets are
    /// sized up front for [`LATENCY_MS_MAX`].
    pub fn record(&self, ms: u64) {
        let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        s.histogram.saturating_record(ms.min(LATENCY_MS_MAX));
        s.sum_ms += ms;
        s.min_ms = s.min_ms.min(ms);
        s.max_ms = s.max_ms.max(ms);
    }

    /// A copy of the samples so far.
    pub fn read(&self) -> Samples {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_shards_give_exact_totals_and_close_percentiles() {
        let (a, b) = (LatencyHistogram::default(), LatencyHistogram::default());
        for ms in 1..=100 {
            a.record(ms);
        }
        b.record(0);
        b.record(1000);
        let mut all = Samples::default();
        all.merge(&a.read());
        all.merge(&b.read());
        let s = all.summary();
        assert_eq!(s.summary.count, 102);
        assert_eq!(s.summary.sum, 5050 + 1000);
        assert_eq!((s.summary.min, s.summary.max), (0, 1000));
        assert!((49..=51).contains(&s.p50), "{}", s.p50);
        assert!((99..=101).contains(&s.p99), "{}", s.p99);
        assert_eq!(
            Samples::default().summary(),
            crate::admin::PercentileSummary::default()
        );
    }
}
