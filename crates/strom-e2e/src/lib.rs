//! End-to-end tests of Strom: `strom-client` against a broker served in-process by
//! `strom_broker::server::run` on 127.0.0.1:0, over a temporary data directory, so the
//! broker's behaviour as a Kafka client sees it is tested without Python or a `strom`
//! process.
//!
//! This library is only the harness, [`TestBroker`]; the tests are in `tests/`. A test
//! starts a broker, talks to it with [`strom_client::Client`] (or with raw requests
//! through [`strom_client::Connection`] where the client checks something itself before
//! sending), and may stop it and open it again on the same data directory.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use strom_broker::errors::Failure;
use strom_broker::{Broker, RawSettings};
use strom_client::{Client, ClientConfig};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Settings every test broker gets before its own: a lone consumer is given its
/// partitions at once instead of after Kafka's three-second wait for more members.
const TEST_DEFAULTS: &[(&str, &str)] = &[("group_initial_rebalance_delay_ms", "0")];

/// How long a broker may take to register itself and create `__consumer_offsets`.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A single-node broker serving on 127.0.0.1 over a temporary directory. Needs a
/// multi-thread tokio runtime (`#[tokio::test(flavor = "multi_thread")]`).
#[derive(Debug)]
pub struct TestBroker {
    /// The data directory, kept across [`TestBroker::restart`] and removed on drop.
    dir: TempDir,
    /// File keys and values over the defaults, applied at every start.
    settings: Vec<(String, String)>,
    /// The server while it runs; `None` once stopped.
    running: Option<Running>,
}

/// One run of the server, from `Broker::open` to `server::run` returning.
#[derive(Debug)]
struct Running {
    broker: Arc<Broker>,
    /// The address the listener is bound to, which is also the one Metadata advertises.
    addr: SocketAddr,
    /// Completes the shutdown future `server::run` was given; dropping it does too, so
    /// a test that panics still starts its broker's shutdown.
    stop: oneshot::Sender<()>,
    run: JoinHandle<Result<(), Failure>>,
}

impl TestBroker {
    /// Starts a broker with `settings` (file keys, as in `strom.toml`) over the defaults,
    /// in a new temporary directory, and waits until it is ready.
    pub async fn start(settings: &[(&str, &str)]) -> TestBroker {
        let mut broker = TestBroker {
            dir: tempfile::tempdir().expect("temporary data directory"),
            settings: TEST_DEFAULTS
                .iter()
                .chain(settings)
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            running: None,
        };
        broker.open().await;
        broker
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.running().addr
    }

    /// The running broker, for what a client cannot see.
    pub fn broker(&self) -> &Arc<Broker> {
        &self.running().broker
    }

    /// A new client bootstrapped from this broker.
    pub async fn client(&self) -> Client {
        Client::connect(ClientConfig::new(&self.addr().to_string()))
            .await
            .expect("client connects")
    }

    /// Shuts the server down gracefully and checks that it closed its logs cleanly.
    pub async fn stop(&mut self) {
        let running = self.running.take().expect("the broker is running");
        let _ = running.stop.send(());
        running
            .run
            .await
            .expect("server task")
            .expect("server::run returns Ok after shutdown");
    }

    /// Stops the server and opens a new broker on the same data directory, listening on
    /// a new port (which it advertises).
    pub async fn restart(&mut self) {
        self.stop().await;
        self.open().await;
    }

    fn running(&self) -> &Running {
        self.running.as_ref().expect("the broker is running")
    }

    /// Binds a listener on a free port, opens the broker on the data directory with that
    /// address as its listen address (so Metadata names the real port), and serves.
    async fn open(&mut self) {
        assert!(self.running.is_none(), "the broker is already running");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("bound address");
        let mut raw = RawSettings::default();
        raw.set("data_dir", self.dir.path().display().to_string(), "test")
            .expect("data_dir");
        raw.set("listen", addr.to_string(), "test").expect("listen");
        for (k, v) in &self.settings {
            raw.set(k, v.clone(), "test")
                .unwrap_or_else(|e| panic!("setting {k}: {e}"));
        }
        let config = raw.build().expect("settings parse");
        // Opening recovers logs and waiting for readiness polls: both block.
        let broker = tokio::task::spawn_blocking(move || {
            let broker = Broker::open(config).unwrap_or_else(|f| panic!("open: {}", f.message));
            assert!(broker.wait_ready(READY_TIMEOUT), "broker not ready in time");
            broker
        })
        .await
        .expect("open task");
        let (stop, stopped) = oneshot::channel::<()>();
        let run = tokio::spawn(strom_broker::run(broker.clone(), listener, async {
            let _ = stopped.await;
        }));
        self.running = Some(Running {
            broker,
            addr,
            stop,
            run,
        });
    }
}
