//! # embedded — a ferrokeeper server inside your own process, for tests
//!
//! [`TestServer::start`] runs a standalone server on `127.0.0.1` with its data in a fresh
//! temporary directory and returns once the client port accepts connections; its
//! [`TestServer::connect_string`] goes to any ZooKeeper client. [`TestServer::stop`] (or
//! dropping it) stops it cleanly, the way SIGTERM stops the binary: shards first, then
//! the commit stage, then the log synced; the temporary directory is removed after.
//!
//! ```
//! use ferrokeeper::embedded::TestServer;
//! use zookeeper_client::{Acls, Client, CreateMode};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = TestServer::start()?;
//! let runtime = tokio::runtime::Runtime::new()?;
//! runtime.block_on(async {
//!     let client = Client::connect(server.connect_string()).await?;
//!     let open = CreateMode::Persistent.with_acls(Acls::anyone_all());
//!     client.create("/greeting", b"hello", &open).await?;
//!     let (data, stat) = client.get_data("/greeting").await?;
//!     assert_eq!((data.as_slice(), stat.version), (&b"hello"[..], 0));
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! })?;
//! server.stop()?; // or let it drop
//! # Ok(())
//! # }
//! ```
//!
//! More of it (restarts on the same data directory, zoo.cfg settings) in
//! `tests/embedded.rs`.
//!
//! The port is one the kernel had free a moment before the server binds it (bound to
//! port 0 and released): another process could take it in between, which a test run on
//! one machine does not see in practice. glommio needs a locked-memory allowance per
//! executor (`ferrokeeper-tune` checks it); root has no limit.
//!
//! Must never: leave a thread, a port or a directory behind once stopped or dropped.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{Config, SystemProperties};
use crate::server::StopHandle;

/// How long [`TestServer::start`] waits for the client port.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a [`TestServer`] keeps its data.
#[derive(Debug)]
enum DataDir {
    /// A temporary directory, removed once the server has stopped.
    Temp(tempfile::TempDir),
    /// A directory the caller owns (kept, so that a later server restarts from it).
    Kept(PathBuf),
}

/// Settings for [`TestServer::start_with`].
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The data directory; `None` for a temporary one removed on stop. Give the same
    /// directory to a second server to see what the first one left.
    pub data_dir: Option<PathBuf>,
    /// zoo.cfg lines added after the defaults (`tickTime=2000`, `clientPortAddress=
    /// 127.0.0.1`, `ferrokeeper.shards=1`, `admin.enableServer=false` as Curator's
    /// TestingServer sets it, the port and the data directory); a later key
    /// wins, so these may override any of them but the port.
    pub config: Vec<(String, String)>,
}

/// A running embedded server. Stops when dropped.
#[derive(Debug)]
pub struct TestServer {
    connect_string: String,
    port: u16,
    data: Option<DataDir>,
    stop: StopHandle,
    /// The thread blocked in `Running::wait`; its result is the server's.
    waiter: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    /// Starts a server on `127.0.0.1` with a temporary data directory and one shard, and
    /// returns once it accepts connections.
    pub fn start() -> std::io::Result<TestServer> {
        TestServer::start_with(Options::default())
    }

    /// Starts a server with `options`; returns once it accepts connections.
    pub fn start_with(options: Options) -> std::io::Result<TestServer> {
        let data = match options.data_dir {
            Some(dir) => {
                std::fs::create_dir_all(&dir)?;
                DataDir::Kept(dir)
            }
            None => DataDir::Temp(
                tempfile::Builder::new()
                    .prefix("ferrokeeper-embedded-")
                    .tempdir()?,
            ),
        };
        let data_path = match &data {
            DataDir::Temp(t) => t.path().to_path_buf(),
            DataDir::Kept(p) => p.clone(),
        };
        let port = free_port()?;
        let mut text = format!(
            "tickTime=2000\nclientPortAddress=127.0.0.1\nferrokeeper.shards=1\n\
             admin.enableServer=false\ndataDir={}\n",
            data_path.display()
        );
        for (key, value) in &options.config {
            text.push_str(&format!("{key}={value}\n"));
        }
        text.push_str(&format!("clientPort={port}\n"));
        // The embedding process's $JVMFLAGS are not this server's system properties.
        let (config, _warnings) = Config::parse_with(&text, &SystemProperties::empty())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
        let running = crate::server::start(config)?;
        let serving = running.wait_until_serving(START_TIMEOUT);
        let stop = running.stop_handle();
        let waiter = std::thread::Builder::new()
            .name("ferrokeeper-embedded".into())
            .spawn(move || running.wait())?;
        let mut server = TestServer {
            connect_string: format!("127.0.0.1:{port}"),
            port,
            data: Some(data),
            stop,
            waiter: Some(waiter),
        };
        if !serving {
            // A shard that failed to bind reported why through the waiter.
            let why = server.shutdown().err().map(|e| e.to_string());
            return Err(std::io::Error::other(format!(
                "the embedded server did not accept connections on 127.0.0.1:{port} within \
                 {START_TIMEOUT:?}{}",
                why.map(|w| format!(": {w}")).unwrap_or_default()
            )));
        }
        Ok(server)
    }

    /// `127.0.0.1:<port>`, for any ZooKeeper client.
    pub fn connect_string(&self) -> &str {
        &self.connect_string
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The data directory (dataDir and dataLogDir).
    pub fn data_dir(&self) -> &Path {
        match &self.data {
            Some(DataDir::Temp(t)) => t.path(),
            Some(DataDir::Kept(p)) => p,
            None => Path::new(""),
        }
    }

    /// Stops the server cleanly and removes a temporary data directory. The error is
    /// the server's, if a part of it had failed, or the log's sync's.
    pub fn stop(mut self) -> std::io::Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> std::io::Result<()> {
        let Some(waiter) = self.waiter.take() else {
            return Ok(());
        };
        self.stop.stop();
        let result = waiter
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the server's thread panicked")));
        if let Some(DataDir::Temp(t)) = self.data.take() {
            t.close()?;
        }
        result
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::warn!(error = %e, "embedded server stopped with an error");
        }
    }
}

/// A port the kernel had free (see the module's note on the race).
fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}
