//! ferrokeeper-tune: host checks and recommended settings. Not yet built (issue: tuner).

fn main() {
    eprintln!("ferrokeeper-tune: not built yet; see the tuner issue");
    std::process::exit(2);
}
