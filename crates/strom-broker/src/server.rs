//! The accept loop: connection limits (in all, and per source address), one task per
//! connection, the memory budget they share, and graceful shutdown (stop accepting, let
//! connections finish what they are doing, flush the logs).

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, broadcast, mpsc};

use crate::broker::Broker;
use crate::budget::Budget;
use crate::connection;
use crate::metrics::Closed;
use crate::registry::Registry;

/// A connection idle at least this long may be closed to admit a new one when the
/// connection limit is reached (younger ones are probably about to send a request).
const EVICTABLE_AFTER: std::time::Duration = std::time::Duration::from_secs(1);
use crate::errors::Failure;
use crate::http::MetricsServer;

/// Serves Kafka clients on `listener` until `shutdown` completes, then shuts down
/// gracefully and closes the broker's logs. What `main` and the tests call.
pub async fn run(
    broker: Arc<Broker>,
    listener: TcpListener,
    shutdown: impl Future,
) -> Result<(), Failure> {
    run_with_metrics(broker, listener, None, shutdown).await
}

/// [`run`], with the metrics and health endpoint (bound earlier, so it could answer
/// "not ready" while the logs loaded): ready while the Kafka listener accepts, not ready
/// from the start of shutdown, stopped once the logs are flushed.
pub async fn run_with_metrics(
    broker: Arc<Broker>,
    listener: TcpListener,
    metrics: Option<MetricsServer>,
    shutdown: impl Future,
) -> Result<(), Failure> {
    let limit = Arc::new(Semaphore::new(broker.config().max_connections.max(1)));
    let registry = Arc::new(Registry::new(
        broker.config().max_connections_per_ip,
        broker.config().max_connections_per_ip_overrides.clone(),
    ));
    let budget = Budget::new(
        broker.config().queued_max_request_bytes,
        broker.config().max_request_bytes_per_connection,
    );
    broker.metrics().set_budget(budget.clone());
    let (notify, _) = broadcast::channel::<()>(1);
    // Every connection task holds a clone; when all are dropped, `recv` returns None.
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    tracing::info!(listen = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "strom is serving Kafka clients");

    // Raft messages from the other nodes (cluster mode).
    let peers = match broker.config().peer_listen {
        Some(addr) => {
            let peer_listener = TcpListener::bind(addr).await.map_err(|e| {
                Failure::new(
                    strom_wire::ErrorCode::UnknownServerError,
                    format!("cannot listen for peers on {addr}: {e}"),
                )
            })?;
            tracing::info!(listen = %addr, "listening for peer nodes");
            let to = broker.clone();
            let peer_server = tokio::spawn(strom_raft::serve_peers(
                peer_listener,
                Arc::new(move |group, msg| to.peer_message(group, msg)),
            ));
            let from = broker.clone();
            let gossip = tokio::spawn(async move {
                let mut every = tokio::time::interval(crate::control::leaders::INTERVAL);
                loop {
                    every.tick().await;
                    from.control().report_leadership();
                }
            });
            Some((peer_server, gossip))
        }
        None => None,
    };
    // Give the node a moment to join: a single node is ready in milliseconds (its
    // groups elect themselves), a cluster node once a majority answers. Clients that
    // connect meanwhile wait in the accept queue; after the wait they are served
    // anyway (Metadata, and LEADER_NOT_AVAILABLE where no leader is known yet).
    let joined = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while !broker.is_ready() && tokio::time::Instant::now() < joined {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    // The coordinators' timers; they stop when shutdown begins.
    let (groups, txns) = (broker.groups().clone(), broker.txns().clone());
    let ticker = crate::ticker::spawn_ticker(
        move || {
            groups.tick();
            txns.tick();
        },
        broker.subscribe_stopping(),
    );
    if let Some(m) = &metrics {
        m.set_broker(broker.clone());
        m.set_ready(true);
    }
    let accept = async {
        loop {
            let (socket, peer) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    // Out of file descriptors and similar: back off instead of spinning.
                    tracing::error!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Some(registered) = registry.register(peer.ip()) else {
                tracing::info!(%peer, "refusing connection: too many from this address");
                broker.metrics().connection_closed(Closed::PerIpLimit);
                continue;
            };
            // At the limit, make room by closing the longest-idle connection; while no
            // connection is idle, the new one waits (and the accept queue behind it).
            let permit = loop {
                if let Ok(p) = limit.clone().try_acquire_owned() {
                    break Some(p);
                }
                registry.evict_longest_idle(EVICTABLE_AFTER);
                tokio::select! {
                    p = limit.clone().acquire_owned() => break p.ok(),
                    _ = tokio::time::sleep(EVICTABLE_AFTER) => {}
                }
            };
            let Some(permit) = permit else { return };
            tracing::debug!(%peer, "accepted connection");
            let open = broker.metrics().connection_opened();
            let broker = broker.clone();
            let shutdown = notify.subscribe();
            let done = done_tx.clone();
            let budget = budget.clone();
            tokio::spawn(async move {
                let state = registered.state.clone();
                connection::serve(broker, socket, peer, state, &budget, shutdown).await;
                drop(registered);
                drop(open);
                drop(permit);
                drop(done);
            });
        }
    };
    tokio::select! {
        _ = accept => {}
        _ = shutdown => tracing::info!("shutting down"),
    }
    if let Some(m) = &metrics {
        m.set_ready(false);
    }
    broker.begin_shutdown();
    let _ = ticker.await;
    if let Some((server, gossip)) = peers {
        server.abort();
        gossip.abort();
    }
    broker.groups().shutdown();
    broker.txns().shutdown();
    let _ = notify.send(());
    drop(done_tx);
    if tokio::time::timeout(broker.config().shutdown_timeout, done_rx.recv())
        .await
        .is_err()
    {
        tracing::warn!("connections did not finish in time; closing anyway");
    }
    let b = broker.clone();
    tokio::task::spawn_blocking(move || b.close())
        .await
        .map_err(|e| Failure::new(strom_wire::ErrorCode::UnknownServerError, e.to_string()))??;
    if let Some(m) = metrics {
        m.stop().await;
    }
    tracing::info!("logs flushed; bye");
    Ok(())
}
