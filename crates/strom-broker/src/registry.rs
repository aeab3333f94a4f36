//! The open client connections as the accept loop sees them: how many come from each
//! address (`max_connections_per_ip`), when each last did something, whether it has
//! requests pending, and a way to ask one to close. When `max_connections` is reached,
//! the longest-idle connection is closed to admit the new one rather than leaving the
//! newcomer in the accept queue while idle sockets hold every slot.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// One connection's shared state, updated by its reader and writer.
#[derive(Debug)]
pub(crate) struct ConnState {
    /// Milliseconds since the registry's epoch of the last frame read or answer written.
    last_active_ms: AtomicU64,
    /// Frames read and not yet answered.
    pending: AtomicUsize,
    /// Told when the connection should close (idle, evicted).
    close: Notify,
    epoch: Instant,
}

impl ConnState {
    fn new(epoch: Instant) -> ConnState {
        let s = ConnState {
            last_active_ms: AtomicU64::new(0),
            pending: AtomicUsize::new(0),
            close: Notify::new(),
            epoch,
        };
        s.touch();
        s
    }

    /// Something happened on the connection (a frame read, an answer written).
    pub(crate) fn touch(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        self.last_active_ms.store(ms, Ordering::Relaxed);
    }

    pub(crate) fn request_read(&self) {
        self.pending.fetch_add(1, Ordering::Relaxed);
        self.touch();
    }

    pub(crate) fn request_answered(&self) {
        self.pending.fetch_sub(1, Ordering::Relaxed);
        self.touch();
    }

    /// How long since the last activity; zero while requests are pending (a long poll
    /// or an acks=all produce is not idleness).
    pub(crate) fn idle_for(&self) -> Duration {
        if self.pending.load(Ordering::Relaxed) > 0 {
            return Duration::ZERO;
        }
        let last = self.last_active_ms.load(Ordering::Relaxed);
        let now = self.epoch.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(last))
    }

    /// Completes when the connection was asked to close.
    pub(crate) async fn close_requested(&self) {
        self.close.notified().await
    }
}

/// Every open connection, by id, and the count per address.
#[derive(Debug)]
pub(crate) struct Registry {
    inner: Mutex<Inner>,
    epoch: Instant,
    per_ip: usize,
    overrides: HashMap<IpAddr, usize>,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    open: HashMap<u64, Arc<ConnState>>,
    by_ip: HashMap<IpAddr, usize>,
}

/// A connection's place in the registry; dropping it removes the connection.
#[derive(Debug)]
pub(crate) struct Registered {
    registry: Arc<Registry>,
    id: u64,
    ip: IpAddr,
    pub state: Arc<ConnState>,
}

impl Registry {
    pub(crate) fn new(
        per_ip: usize,
        overrides: impl IntoIterator<Item = (IpAddr, usize)>,
    ) -> Registry {
        Registry {
            inner: Mutex::new(Inner::default()),
            epoch: Instant::now(),
            per_ip,
            overrides: overrides.into_iter().collect(),
        }
    }

    /// Adds a connection from `ip`, or `None` when that address already has as many as
    /// it may (Kafka closes such a connection right away too).
    pub(crate) fn register(self: &Arc<Self>, ip: IpAddr) -> Option<Registered> {
        let limit = self.overrides.get(&ip).copied().unwrap_or(self.per_ip);
        let mut inner = self.inner.lock().unwrap();
        let count = inner.by_ip.entry(ip).or_default();
        if *count >= limit {
            return None;
        }
        *count += 1;
        inner.next_id += 1;
        let id = inner.next_id;
        let state = Arc::new(ConnState::new(self.epoch));
        inner.open.insert(id, state.clone());
        Some(Registered {
            registry: self.clone(),
            id,
            ip,
            state,
        })
    }

    /// Asks the connection idle longest (at least `min_idle`, nothing pending) to
    /// close. Returns whether one was found.
    pub(crate) fn evict_longest_idle(&self, min_idle: Duration) -> bool {
        let inner = self.inner.lock().unwrap();
        let victim = inner
            .open
            .values()
            .map(|s| (s.idle_for(), s))
            .filter(|(idle, _)| *idle >= min_idle)
            .max_by_key(|(idle, _)| *idle);
        match victim {
            Some((idle, s)) => {
                tracing::info!(
                    idle_ms = idle.as_millis() as u64,
                    "connection limit reached: closing the longest-idle connection"
                );
                s.close.notify_one();
                true
            }
            None => false,
        }
    }

    #[cfg(test)]
    pub(crate) fn open(&self) -> usize {
        self.inner.lock().unwrap().open.len()
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut inner = self.registry.inner.lock().unwrap();
        inner.open.remove(&self.id);
        if let Some(n) = inner.by_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                inner.by_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_address_limits_and_overrides() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let r = Arc::new(Registry::new(2, [(b, 1)]));
        let a1 = r.register(a).unwrap();
        let _a2 = r.register(a).unwrap();
        assert!(r.register(a).is_none(), "third from a");
        let _b1 = r.register(b).unwrap();
        assert!(r.register(b).is_none(), "b's override is 1");
        drop(a1);
        let _a3 = r.register(a).expect("a slot freed by a close");
        assert_eq!(r.open(), 3);
    }

    #[tokio::test]
    async fn the_longest_idle_connection_without_pending_requests_is_evicted() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let r = Arc::new(Registry::new(10, []));
        let old = r.register(ip).unwrap();
        let busy = r.register(ip).unwrap();
        busy.state.request_read();
        std::thread::sleep(Duration::from_millis(30));
        let young = r.register(ip).unwrap();
        assert!(
            !r.evict_longest_idle(Duration::from_secs(5)),
            "none idle that long"
        );
        assert!(r.evict_longest_idle(Duration::from_millis(20)));
        // `old` was told; the others were not.
        tokio::time::timeout(Duration::from_secs(1), old.state.close_requested())
            .await
            .expect("the idle one is asked to close");
        for s in [&busy.state, &young.state] {
            assert!(
                tokio::time::timeout(Duration::from_millis(20), s.close_requested())
                    .await
                    .is_err()
            );
        }
    }
}
