//! `--apply`: the few host changes that are safe and reversible, and the manual steps.
//!
//! Only runtime kernel settings are changed, by writing their `/proc/sys` or `/sys` file:
//! `net.core.somaxconn`, `net.ipv4.tcp_max_syn_backlog` and transparent huge pages
//! (`always` → `madvise`). Nothing is persisted, so a reboot undoes everything, and the
//! exact command to undo each change sooner is printed. Everything else a check flags
//! (CPU governor, limits, swappiness, clock source, io_uring sysctl) is a manual step:
//! those are power, security or service-manager decisions the operator should make.
//!
//! [`plan`] is pure; [`execute`] does the writes.

use std::path::PathBuf;

use serde::Serialize;

use crate::check::{Check, Status, GLOMMIO_LISTEN_BACKLOG, LISTEN_QUEUE_RECOMMENDED};
use crate::host::HostReport;

/// The checks whose fix `--apply` performs itself.
pub const APPLIED_CHECKS: [&str; 3] = ["somaxconn", "tcp_max_syn_backlog", "transparent_hugepages"];

/// One change `--apply` makes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Action {
    /// The setting, as `sysctl` names it (or the `/sys` path for THP).
    pub setting: String,
    /// The file written.
    pub path: PathBuf,
    /// The value before.
    pub from: String,
    /// The value written.
    pub to: String,
    /// The command that restores `from`.
    pub revert: String,
}

/// Something the operator should do by hand, from a check that is not ok.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ManualStep {
    /// The check it comes from.
    pub check: &'static str,
    /// The check's fix.
    pub fix: String,
}

/// What `--apply` would do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// The changes made automatically (as root).
    pub actions: Vec<Action>,
    /// The rest of the fixes, for the operator.
    pub manual: Vec<ManualStep>,
    /// How to make the automatic changes survive a reboot, if the operator wants that.
    pub persist: Vec<String>,
}

/// The outcome of one action.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    /// The action.
    pub action: Action,
    /// Whether the value reads back as written.
    pub done: bool,
    /// Why not, when it was not done.
    pub error: Option<String>,
}

/// Decides what `--apply` changes on `host`, given the checks' outcomes.
pub fn plan(host: &HostReport, checks: &[Check]) -> Plan {
    let mut actions = Vec::new();
    let mut persist = Vec::new();
    let sysctls = [
        (
            "net.core.somaxconn",
            "/proc/sys/net/core/somaxconn",
            host.somaxconn,
        ),
        (
            "net.ipv4.tcp_max_syn_backlog",
            "/proc/sys/net/ipv4/tcp_max_syn_backlog",
            host.tcp_max_syn_backlog,
        ),
    ];
    for (name, path, value) in sysctls {
        if let Some(v) = value.filter(|&v| v < GLOMMIO_LISTEN_BACKLOG) {
            actions.push(Action {
                setting: name.to_string(),
                path: PathBuf::from(path),
                from: v.to_string(),
                to: LISTEN_QUEUE_RECOMMENDED.to_string(),
                revert: format!("sysctl -w {name}={v}"),
            });
            persist.push(format!(
                "echo '{name}={LISTEN_QUEUE_RECOMMENDED}' >> /etc/sysctl.d/90-ferrokeeper.conf"
            ));
        }
    }
    if let Some(enabled) = host.thp.as_ref().and_then(|t| t.enabled.as_deref()) {
        if enabled == "always" {
            let path = "/sys/kernel/mm/transparent_hugepage/enabled";
            actions.push(Action {
                setting: "transparent_hugepage/enabled".to_string(),
                path: PathBuf::from(path),
                from: enabled.to_string(),
                to: "madvise".to_string(),
                revert: format!("echo {enabled} > {path}"),
            });
            persist.push(
                "add the kernel parameter transparent_hugepage=madvise (GRUB_CMDLINE_LINUX in \
                 /etc/default/grub, then update-grub)"
                    .to_string(),
            );
        }
    }
    let manual = checks
        .iter()
        .filter(|c| matches!(c.status, Status::Warn | Status::Fail))
        .filter(|c| !APPLIED_CHECKS.contains(&c.name))
        .filter_map(|c| {
            c.fix.as_ref().map(|fix| ManualStep {
                check: c.name,
                fix: fix.clone(),
            })
        })
        .collect();
    Plan {
        actions,
        manual,
        persist,
    }
}

/// Performs `plan`'s actions, calling `before` with each one just before it is made and
/// `after` with its outcome. Continues past a failed action; the outcomes say which were
/// done.
pub fn execute(
    plan: &Plan,
    mut before: impl FnMut(&Action),
    mut after: impl FnMut(&Outcome),
) -> Vec<Outcome> {
    plan.actions
        .iter()
        .map(|action| {
            before(action);
            let result = std::fs::write(&action.path, format!("{}\n", action.to)).and_then(|()| {
                let now = std::fs::read_to_string(&action.path)?;
                // THP reads back as "always [madvise] never"; sysctls as the number.
                let selected =
                    crate::parse::bracketed_choice(&now).unwrap_or_else(|| now.trim().to_string());
                if selected == action.to {
                    Ok(())
                } else {
                    Err(std::io::Error::other(format!(
                        "wrote {:?} but it reads back as {selected:?}",
                        action.to
                    )))
                }
            });
            let outcome = Outcome {
                action: action.clone(),
                done: result.is_ok(),
                error: result.err().map(|e| e.to_string()),
            };
            after(&outcome);
            outcome
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::evaluate;
    use crate::fixtures;
    use crate::host::{CpuGovernor, ThpReport};
    use crate::recommend::Targets;

    #[test]
    fn nothing_to_apply_on_a_healthy_host() {
        let h = fixtures::host();
        let p = plan(&h, &evaluate(&h, &Targets::default()));
        assert!(p.actions.is_empty());
        assert!(p.manual.is_empty());
        assert!(p.persist.is_empty());
    }

    #[test]
    fn low_listen_queues_and_thp_always_are_applied_with_reverts() {
        let mut h = fixtures::host();
        h.somaxconn = Some(128);
        h.tcp_max_syn_backlog = Some(512);
        h.thp = Some(ThpReport {
            enabled: Some("always".into()),
            defrag: Some("madvise".into()),
        });
        let p = plan(&h, &evaluate(&h, &Targets::default()));
        let summary: Vec<_> = p
            .actions
            .iter()
            .map(|a| {
                (
                    a.setting.as_str(),
                    a.from.as_str(),
                    a.to.as_str(),
                    a.revert.as_str(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "net.core.somaxconn",
                    "128",
                    "4096",
                    "sysctl -w net.core.somaxconn=128"
                ),
                (
                    "net.ipv4.tcp_max_syn_backlog",
                    "512",
                    "4096",
                    "sysctl -w net.ipv4.tcp_max_syn_backlog=512"
                ),
                (
                    "transparent_hugepage/enabled",
                    "always",
                    "madvise",
                    "echo always > /sys/kernel/mm/transparent_hugepage/enabled"
                ),
            ]
        );
        // Applied checks are not repeated as manual steps.
        assert!(p.manual.is_empty());
        assert_eq!(p.persist.len(), 3);
    }

    #[test]
    fn governor_is_only_ever_a_manual_step() {
        let mut h = fixtures::host();
        h.governors = vec![CpuGovernor {
            cpu: 0,
            governor: "powersave".into(),
        }];
        let p = plan(&h, &evaluate(&h, &Targets::default()));
        assert!(p.actions.is_empty());
        assert_eq!(p.manual.len(), 1);
        assert_eq!(p.manual[0].check, "cpu_governor");
        assert!(p.manual[0]
            .fix
            .contains("cpupower frequency-set -g performance"));
    }

    #[test]
    fn execute_writes_and_verifies() {
        let dir =
            std::env::temp_dir().join(format!("ferrokeeper-tune-apply-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sysctl = dir.join("somaxconn");
        let thp = dir.join("enabled");
        std::fs::write(&sysctl, "128\n").unwrap();
        std::fs::write(&thp, "[always] madvise never\n").unwrap();
        let plan = Plan {
            actions: vec![
                Action {
                    setting: "net.core.somaxconn".into(),
                    path: sysctl.clone(),
                    from: "128".into(),
                    to: "4096".into(),
                    revert: String::new(),
                },
                // A plain file reads back exactly what was written; the real /sys file
                // reads back "always [madvise] never". Both count as done.
                Action {
                    setting: "thp".into(),
                    path: thp,
                    from: "always".into(),
                    to: "madvise".into(),
                    revert: String::new(),
                },
                Action {
                    setting: "missing".into(),
                    path: dir.join("no/such/file"),
                    from: "1".into(),
                    to: "2".into(),
                    revert: String::new(),
                },
            ],
            manual: Vec::new(),
            persist: Vec::new(),
        };
        let events = std::cell::RefCell::new(Vec::new());
        let outcomes = execute(
            &plan,
            |a| events.borrow_mut().push(format!("before {}", a.setting)),
            |o| {
                events
                    .borrow_mut()
                    .push(format!("after {} {}", o.action.setting, o.done))
            },
        );
        let events = events.into_inner();
        assert_eq!(
            events,
            [
                "before net.core.somaxconn",
                "after net.core.somaxconn true",
                "before thp",
                "after thp true",
                "before missing",
                "after missing false",
            ]
        );
        assert!(outcomes[0].done, "{:?}", outcomes[0]);
        assert_eq!(std::fs::read_to_string(&sysctl).unwrap(), "4096\n");
        assert!(outcomes[1].done, "plain file reads back 'madvise'");
        assert!(!outcomes[2].done);
        assert!(outcomes[2].error.is_some());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
