//! The tuner's whole answer for one host — host facts, checks, recommended settings and,
//! with `--apply`, what was changed — as one serializable value, and its text rendering.

use std::fmt::Write as _;

use serde::Serialize;

use crate::apply::{Outcome, Plan};
use crate::check::{self, Check, Status};
use crate::host::HostReport;
use crate::recommend::{self, Recommendations, Targets};

/// Everything `ferrokeeper-tune` reports. `--json` prints exactly this.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// `ferrokeeper-tune`.
    pub tool: &'static str,
    /// This crate's version.
    pub version: &'static str,
    /// The targets the checks and recommendations were computed for.
    pub targets: Targets,
    /// What the host is.
    pub host: HostReport,
    /// The checks, in [`check::CHECK_NAMES`] order.
    pub checks: Vec<Check>,
    /// The worst status of all checks.
    pub worst: Status,
    /// The recommended settings.
    pub recommendations: Recommendations,
    /// The same as a `zoo.cfg` snippet.
    pub zoo_cfg: String,
    /// What `--apply` would do (always computed, so that a report shows it).
    pub plan: Plan,
    /// What `--apply` did; `None` without `--apply`.
    pub applied: Option<Applied>,
}

/// The result of `--apply`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Applied {
    /// Whether the tuner ran as root. Without root nothing is changed.
    pub root: bool,
    /// Each action's outcome (empty without root).
    pub outcomes: Vec<Outcome>,
}

impl Report {
    /// Evaluates `host` against `targets`.
    pub fn new(host: HostReport, targets: Targets) -> Report {
        let checks = check::evaluate(&host, &targets);
        let recommendations = recommend::recommend_with(&host, &targets);
        let plan = crate::apply::plan(&host, &checks);
        Report {
            tool: "ferrokeeper-tune",
            version: env!("CARGO_PKG_VERSION"),
            targets,
            worst: check::worst(&checks),
            zoo_cfg: recommendations.zoo_cfg(),
            host,
            checks,
            recommendations,
            plan,
            applied: None,
        }
    }

    /// The human-readable report (without the `--apply` section, which is printed as it
    /// happens). `verbose` also explains the checks that are ok.
    pub fn text(&self, verbose: bool) -> String {
        let mut out = String::new();
        let h = &self.host;
        let _ = writeln!(
            out,
            "{} {}: host checks and recommended settings for ferrokeeper",
            self.tool, self.version
        );
        let _ = writeln!(
            out,
            "host: kernel {}, {} usable CPU(s), {} memory, uid {}",
            h.kernel_release.as_deref().unwrap_or("unknown"),
            h.cpus.usable,
            h.memory_total_kib
                .map_or("unknown".to_string(), |k| format!(
                    "{:.1} GiB",
                    k as f64 / 1048576.0
                )),
            h.effective_uid
        );
        if let Some(d) = &h.disk {
            let _ = writeln!(
                out,
                "data directory: {} (probe budget {:.1} s, took {:.1} s)",
                d.data_dir.display(),
                d.budget_seconds,
                d.elapsed_seconds
            );
        }

        let _ = writeln!(out, "\nCHECKS");
        for c in &self.checks {
            let _ = writeln!(out, "[{:<7}] {}: {}", c.status.label(), c.name, c.found);
            if verbose || c.status != Status::Ok {
                let _ = writeln!(out, "          why: {}", c.why);
            }
            if let Some(fix) = &c.fix {
                let _ = writeln!(out, "          fix: {fix}");
            }
        }
        let count = |s: Status| self.checks.iter().filter(|c| c.status == s).count();
        let _ = writeln!(
            out,
            "{} checks: {} ok, {} unknown, {} warn, {} fail",
            self.checks.len(),
            count(Status::Ok),
            count(Status::Unknown),
            count(Status::Warn),
            count(Status::Fail)
        );

        let t = &self.targets;
        let _ = writeln!(
            out,
            "\nRECOMMENDED SETTINGS (targets: write p99 {} at the server, {} connections, \
             commit stage {} µs/request assumed)",
            check::human_us(t.write_latency_p99_us),
            t.expected_connections,
            t.prep_us_per_request
        );
        out.push_str(&self.zoo_cfg);

        if self.applied.is_none() {
            let _ = writeln!(out, "\nAPPLY");
            if self.plan.actions.is_empty() {
                let _ = writeln!(out, "--apply would change nothing on this host.");
            } else {
                let _ = writeln!(out, "--apply (as root) would set:");
                for a in &self.plan.actions {
                    let _ = writeln!(
                        out,
                        "  {}: {} -> {}   (revert: {})",
                        a.setting, a.from, a.to, a.revert
                    );
                }
            }
            if !self.plan.manual.is_empty() {
                let _ = writeln!(out, "manual steps (never done by --apply):");
                for m in &self.plan.manual {
                    let _ = writeln!(out, "  {}: {}", m.check, m.fix);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    #[test]
    fn text_names_every_check_and_the_zoo_cfg() {
        let r = Report::new(fixtures::host(), Targets::default());
        let text = r.text(false);
        for name in check::CHECK_NAMES {
            assert!(
                text.contains(&format!("] {name}: ")),
                "{name} missing:\n{text}"
            );
        }
        assert!(text.contains("ferrokeeper.shards=2"));
        assert!(text.contains("--apply would change nothing"));
    }

    #[test]
    fn json_has_stable_field_names() {
        let r = Report::new(fixtures::host(), Targets::default());
        let v: serde_json::Value = serde_json::to_value(&r).unwrap();
        assert_eq!(v["tool"], "ferrokeeper-tune");
        assert_eq!(v["checks"][0]["name"], "io_uring");
        assert_eq!(v["checks"][0]["status"], "ok");
        assert_eq!(v["recommendations"]["shards"]["key"], "ferrokeeper.shards");
        assert_eq!(v["recommendations"]["shards"]["value"], 2);
        assert_eq!(v["host"]["disk"]["sync_fallocated"]["p99_us"], 600.0);
        assert!(v["applied"].is_null());
    }
}
