//! The benchmark harness's ensemble comparison in its `smoke` profile: three ferrokeeper
//! servers (the binary built with the tests) and three Apache ZooKeeper 3.8 servers, as
//! `ferrokeeper-bench compare --smoke --ensemble` runs them.
//!
//! It keeps the harness from rotting: it fails when a row errs, measures nothing, or a
//! leader kill is never followed by an acknowledged write, and never because of a
//! performance number.

use ferrokeeper_bench::ensemble::{self, EnsemblePlan, ROWS};
use ferrokeeper_bench::plan::Profile;
use ferrokeeper_bench::report::Machine;
use ferrokeeper_bench::server::{ServerKind, ServerSettings, JAVA_ZK_CLASSPATH};

#[test]
fn ensemble_smoke_runs_the_rows_and_a_failover_on_both_kinds_without_errors() {
    let base = std::env::temp_dir().join(format!(
        "ferrokeeper-bench-ens-smoke-{}",
        std::process::id()
    ));
    let settings = ServerSettings {
        ferrokeeper_bin: env!("CARGO_BIN_EXE_ferrokeeper").into(),
        ferrokeeper_shards: None,
        java_heap: "256m".into(),
        java_classpath: JAVA_ZK_CLASSPATH.into(),
        tick_time_ms: 2000,
        base_dir: base.join("servers"),
        extra_config: Vec::new(),
    };
    let plan = EnsemblePlan::of(Profile::Smoke);
    let result = ensemble::run(
        &plan,
        &settings,
        None,
        "cargo test --test bench_ensemble_smoke",
    );
    assert!(
        result.errors.is_empty(),
        "the ensemble comparison erred:\n{}",
        result.errors.join("\n")
    );
    for kind in [ServerKind::Java, ServerKind::Ferrokeeper] {
        let side = result.sides.get(kind).as_ref().expect("the ensemble ran");
        let rows: Vec<_> = side.rows.iter().map(|(w, _)| *w).collect();
        assert_eq!(rows, ROWS.to_vec());
        for (w, stats) in &side.rows {
            assert!(
                stats.ops > 0,
                "{} on {} measured nothing",
                w.name(),
                kind.name()
            );
            assert!(
                stats.server_cpu_ns.is_some(),
                "{} on {}: no CPU reading over the three members",
                w.name(),
                kind.name()
            );
        }
        let failover = side.failover.as_ref().expect("the failover series ran");
        assert_eq!(failover.times_ns.len(), plan.kills);
        assert!(failover.times_ns.iter().all(Option::is_some));
    }
    let out = base.join("report");
    let path = ferrokeeper_bench::ensemble_report::write(&result, &Machine::detect(), &out)
        .expect("report written");
    let md = std::fs::read_to_string(&path).expect("report readable");
    assert!(md.contains("| reads (getData) |") && md.contains("| failover: kill -9 the leader"));
    let _ = std::fs::remove_dir_all(&base);
}
