//! The background task that drives the coordinator's timers (session expiry, rebalance
//! and join timeouts, offset retention) every 100 ms until shutdown.

use std::sync::Arc;
use std::time::Duration;

use crate::broker::Broker;

const TICK: Duration = Duration::from_millis(100);

/// Starts the ticker; it ends when the broker begins shutting down.
pub fn spawn_ticker(broker: Arc<Broker>) -> tokio::task::JoinHandle<()> {
    let mut stopping = broker.subscribe_stopping();
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(TICK);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => broker.groups.tick(&broker),
                _ = stopping.wait_for(|s| *s) => return,
            }
        }
    })
}
