//! The benchmark harness's `smoke` profile, run against the ferrokeeper binary built with
//! the tests and against Apache ZooKeeper: the same as
//! `ferrokeeper-bench compare --smoke --ferrokeeper-bin target/release/ferrokeeper`.
//!
//! It keeps the harness from rotting: it fails when a workload errs (an error reply, a
//! broken connection, a request left unanswered, a server that died) or measures
//! nothing at all, and never because of a performance number.

use ferrokeeper_bench::compare::{compare, CompareOptions, Profile};
use ferrokeeper_bench::report::{self, Machine};
use ferrokeeper_bench::workload::Workload;

#[test]
fn compare_smoke_runs_every_workload_on_both_servers_without_errors() {
    let base = std::env::temp_dir().join(format!("ferrokeeper-bench-smoke-{}", std::process::id()));
    let options = CompareOptions {
        profile: Profile::Smoke,
        workloads: Workload::ALL.to_vec(),
        ferrokeeper_bin: env!("CARGO_BIN_EXE_ferrokeeper").into(),
        out_dir: None,
        threads: None,
        sessions: None,
        outstanding: None,
        rounds: None,
        data_bytes: None,
        load_nodes: None,
        load_random_data: false,
        rate: None,
        shards: None,
        java_heap: "512m".into(),
        base_dir: Some(base.join("servers")),
        keep_dirs: false,
        zoo_cfg: Vec::new(),
        command_line: "cargo test --test bench_smoke".into(),
    };
    let result = compare(&options).expect("both servers start");
    assert!(
        result.errors.is_empty(),
        "workloads erred:\n{}",
        result.errors.join("\n")
    );
    let ran: Vec<Workload> = result.workloads.iter().map(|w| w.workload).collect();
    assert_eq!(ran, Workload::ALL.to_vec());
    for w in &result.workloads {
        assert!(
            w.sides.java.stats.ops > 0 && w.sides.fk.stats.ops > 0,
            "{} measured no operations (ZooKeeper {}, ferrokeeper {})",
            w.workload.name(),
            w.sides.java.stats.ops,
            w.sides.fk.stats.ops
        );
    }
    assert!(!result.sweep.is_empty(), "the outstanding sweep ran");
    assert_eq!(result.fixed_rate.len(), 2, "the fixed-rate runs ran");
    let memory = result.memory.as_ref().expect("load ran");
    for (name, m) in [("ZooKeeper", &memory.java), ("ferrokeeper", &memory.fk)] {
        let dir = m
            .data_dir
            .as_ref()
            .expect("the dataDir was read after load");
        assert!(
            dir.usage.logs.files > 0 && dir.usage.logs.allocated > 0,
            "{name} wrote a transaction log: {dir:?}"
        );
    }

    // The report renders from these results.
    let out = base.join("report");
    let path = report::write(&result, &Machine::detect(), &out).expect("report written");
    let md = std::fs::read_to_string(&path).expect("report readable");
    assert!(md.contains("| read |") && md.contains("forceSync=no"));
    assert!(md.contains("dataDir allocated, ferrokeeper / ZooKeeper"));
    let _ = std::fs::remove_dir_all(&base);
}
