//! The background task that drives the coordinator's timers (session expiry, rebalance
//! and join timeouts, offset retention) every 100 ms until shutdown.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::Groups;

const TICK: Duration = Duration::from_millis(100);

/// Starts the ticker; it ends when `stopping` turns true (the broker shuts down).
pub fn spawn_ticker(
    groups: Arc<Groups>,
    mut stopping: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(TICK);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => groups.tick(),
                _ = stopping.wait_for(|s| *s) => return,
            }
        }
    })
}
