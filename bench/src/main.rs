//! ferrokeeper-bench: load generator and side-by-side runs against Apache ZooKeeper.
//! Not yet built (issue: benchmark harness).

fn main() {
    eprintln!("ferrokeeper-bench: not built yet; see the benchmark issue");
    std::process::exit(2);
}
