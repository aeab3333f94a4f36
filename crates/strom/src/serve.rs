//! `strom serve`: builds the broker configuration (flags over `STROM_*` environment over
//! the config file over defaults), sets up logging and runs the server until SIGINT or
//! SIGTERM.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Arg, ArgAction, ArgMatches, Command};
use strom_broker::http::MetricsServer;
use strom_broker::{Broker, RawSettings, SETTINGS};

fn flag_name(key: &str) -> String {
    key.replace('_', "-")
}

pub(crate) fn command() -> Command {
    let mut cmd = Command::new("serve")
        .about("Run a broker (defaults: 127.0.0.1:9092, data in ./strom-data, topics auto-created)")
        .arg(
            Arg::new("config")
                .long("config")
                .value_name("FILE")
                .help("TOML file of settings (keys as below, with '_')"),
        )
        .arg(
            Arg::new("log-format")
                .long("log-format")
                .value_parser(["text", "json"])
                .default_value("text")
                .help("log line format"),
        );
    for s in SETTINGS {
        let name: &'static str = Box::leak(flag_name(s.key).into_boxed_str());
        let help = format!(
            "{} [default: {}; env STROM_{}]",
            s.help,
            s.default,
            s.key.to_ascii_uppercase()
        );
        cmd = cmd.arg(
            Arg::new(s.key)
                .long(name)
                .value_name("VALUE")
                .action(ArgAction::Set)
                .help(help),
        );
    }
    cmd
}

pub(crate) fn run(m: &ArgMatches) -> anyhow::Result<()> {
    init_logging(m.get_one::<String>("log-format").map(String::as_str) == Some("json"));
    fail_stop_on_panic();
    let mut raw = RawSettings::default();
    if let Some(file) = m.get_one::<String>("config") {
        raw.merge_file(&PathBuf::from(file))?;
    }
    raw.merge_env(std::env::vars())?;
    for s in SETTINGS {
        if let Some(v) = m.get_one::<String>(s.key) {
            raw.set(s.key, v.clone(), format!("flag --{}", flag_name(s.key)))?;
        }
    }
    let config = raw.build()?;
    raise_fd_limit();
    // Storage fault injection for fault tests of a whole broker (docs/fuzzing.md);
    // never set in production.
    let faults =
        strom_log::disk::faults::from_env().map_err(|e| anyhow::anyhow!("STROM_FAULTS: {e}"))?;
    if faults > 0 {
        tracing::warn!(
            rules = faults,
            "STROM_FAULTS is set: storage operations will fail on purpose (testing only)"
        );
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("strom")
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        // Bound before the logs load, so /healthz answers and /readyz says "not yet"
        // during a long recovery.
        let metrics = match config.metrics_listen {
            Some(addr) => Some(
                MetricsServer::bind(addr)
                    .await
                    .with_context(|| format!("cannot serve metrics on {addr}"))?,
            ),
            None => None,
        };
        let data_dir = config.data_dir.clone();
        let broker = tokio::task::spawn_blocking(move || Broker::open(config))
            .await?
            .map_err(|f| {
                anyhow::anyhow!(
                    "cannot open data directory {}: {}",
                    data_dir.display(),
                    f.message
                )
            })?;
        strom_broker::run_with_metrics(broker, listener, metrics, shutdown_signal())
            .await
            .map_err(|f| anyhow::anyhow!("shutdown failed: {}", f.message))
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("received SIGINT"),
        _ = term.recv() => tracing::info!("received SIGTERM"),
    }
}

fn init_logging(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("STROM_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info,raft=warn"));
    // Colours only for a terminal: a log file or journal gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_ansi(ansi)
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// A panic is a bug; a broker that carries on with one of its threads dead (a Raft
/// group's lock poisoned, a fsync round gone) would keep serving a cluster it can no
/// longer keep its promises to. Stop the whole process instead: its peers elect new
/// leaders, a supervisor restarts it, and recovery starts from what is on disk.
fn fail_stop_on_panic() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        tracing::error!(panic = %info, "a thread panicked; stopping the broker");
        default(info);
        std::process::abort();
    }));
}

/// Partition logs and client connections both need descriptors (a node with 10,000
/// partitions needs thousands): raise the soft open-file limit to the hard limit, as
/// Kafka and Redpanda advise operators to, and say what the broker got.
#[allow(unsafe_code)] // audited: see the SAFETY notes below
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "cannot read the open-file limit");
        return;
    }
    let soft = lim.rlim_cur;
    if soft < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            tracing::warn!(
                soft,
                hard = lim.rlim_max,
                error = %std::io::Error::last_os_error(),
                "could not raise the open-file limit"
            );
            return;
        }
        tracing::info!(from = soft, to = lim.rlim_max, "raised the open-file limit");
    } else {
        tracing::info!(limit = soft, "open-file limit");
    }
}
