//! `ferrokeeper [zoo.cfg]`: runs the server with ZooKeeper's config file, or with the
//! embedded default (port 2181, data under ./data) when no file is given.

use std::path::PathBuf;

use ferrokeeper::config::Config;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("usage: ferrokeeper [path/to/zoo.cfg]\n\nWith no argument: port 2181, data under ./data.");
        return;
    }
    let config = match args.first() {
        Some(p) => match Config::load(&PathBuf::from(p)) {
            Ok((c, warnings)) => {
                for w in warnings {
                    tracing::warn!("{w}");
                }
                c
            }
            Err(e) => {
                eprintln!("ferrokeeper: {e}");
                std::process::exit(2);
            }
        },
        None => Config::embedded_default(),
    };
    if let Err(e) = ferrokeeper::server::run(config) {
        eprintln!("ferrokeeper: {e}");
        std::process::exit(1);
    }
}
