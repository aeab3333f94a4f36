//! The background task that drives the coordinators' timers every 100 ms until shutdown:
//! the group coordinator's (session expiry, rebalance and join timeouts, offset
//! retention) and the transaction coordinator's (transaction timeouts, marker retries).

use std::time::Duration;

use tokio::sync::watch;

const TICK: Duration = Duration::from_millis(100);

/// Starts the ticker; it ends when `stopping` turns true (the broker shuts down).
pub(crate) fn spawn_ticker(
    tick: impl Fn() + Send + 'static,
    mut stopping: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(TICK);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => tick(),
                _ = stopping.wait_for(|s| *s) => return,
            }
        }
    })
}
