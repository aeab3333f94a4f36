//! The memory budget for requests in flight (Kafka: `queued.max.request.bytes`): a
//! semaphore of bytes for the whole broker and one per connection. A frame's length is
//! taken from both as soon as its length prefix is read, before its body is read or
//! buffered, and given back when its answer has been written. A connection whose next
//! frame does not fit simply is not read from until it does: the client waits (TCP back
//! pressure), it is not disconnected.
//!
//! Charging the claimed length up front, as Kafka's memory pool does, means a frame once
//! started can always be completed (no two half-read frames wait on each other's bytes);
//! a client that claims a large frame and then stalls is closed by the request read
//! timeout, which gives its share back.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The broker-wide budget. Cloning shares it.
#[derive(Debug, Clone)]
pub struct Budget {
    global: Arc<Semaphore>,
    total: usize,
    per_connection: usize,
}

/// A connection's share: at most `per_connection` bytes of its frames in flight, except
/// that a single frame always fits (it cannot be split).
#[derive(Debug, Clone)]
pub struct ConnectionBudget {
    own: Arc<Semaphore>,
    cap: usize,
    global: Arc<Semaphore>,
}

/// Bytes of one frame held in the budget; dropping it gives them back.
#[derive(Debug)]
pub struct Lease {
    _own: Option<OwnedSemaphorePermit>,
    _global: Option<OwnedSemaphorePermit>,
}

impl Budget {
    /// `total` bytes for all connections, `per_connection` for each.
    pub fn new(total: usize, per_connection: usize) -> Budget {
        let total = total.clamp(1, Semaphore::MAX_PERMITS);
        Budget {
            global: Arc::new(Semaphore::new(total)),
            total,
            per_connection: per_connection.clamp(1, total),
        }
    }

    pub fn connection(&self) -> ConnectionBudget {
        ConnectionBudget {
            own: Arc::new(Semaphore::new(self.per_connection)),
            cap: self.per_connection,
            global: self.global.clone(),
        }
    }

    /// Bytes held by frames read and not yet answered, on all connections.
    pub fn in_use(&self) -> usize {
        self.total - self.global.available_permits()
    }

    pub fn total(&self) -> usize {
        self.total
    }
}

impl ConnectionBudget {
    /// Waits until a frame of `len` bytes fits this connection's share and the broker's
    /// budget, and takes it. The connection's share is taken first, so a connection
    /// waiting for its own answers to drain holds nothing of the broker's meanwhile.
    /// `len` must not exceed the broker's total (the frame size limit guarantees it).
    pub async fn acquire(&self, len: usize) -> Lease {
        if len == 0 {
            return Lease {
                _own: None,
                _global: None,
            };
        }
        let own = u32::try_from(len.min(self.cap)).unwrap_or(u32::MAX);
        let global = u32::try_from(len).unwrap_or(u32::MAX);
        // The semaphores are never closed, so acquiring only fails if they were.
        let own = self.own.clone().acquire_many_owned(own).await.ok();
        let global = self.global.clone().acquire_many_owned(global).await.ok();
        Lease {
            _own: own,
            _global: global,
        }
    }

    /// True while any frame of this connection is read and not yet answered.
    #[cfg(test)]
    pub fn busy(&self) -> bool {
        self.own.available_permits() < self.cap
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_frame_waits_until_earlier_ones_are_answered() {
        let budget = Budget::new(100, 60);
        let a = budget.connection();
        let b = budget.connection();
        let first = a.acquire(60).await;
        assert!(a.busy());
        // The connection's own share is used up: its next frame waits.
        assert!(
            tokio::time::timeout(Duration::from_millis(50), a.acquire(1))
                .await
                .is_err()
        );
        // Another connection gets what is left of the broker's budget, no more.
        let second = b.acquire(40).await;
        assert_eq!(budget.in_use(), 100);
        assert!(
            tokio::time::timeout(Duration::from_millis(50), b.acquire(1))
                .await
                .is_err()
        );
        drop(first);
        assert!(!a.busy());
        let third = tokio::time::timeout(Duration::from_millis(50), b.acquire(20))
            .await
            .expect("room again once an answer is written");
        drop((second, third));
        assert_eq!(budget.in_use(), 0);
    }

    #[tokio::test]
    async fn a_frame_larger_than_the_connection_share_still_fits_alone() {
        let budget = Budget::new(100, 10);
        let c = budget.connection();
        let big = c.acquire(80).await;
        assert_eq!(budget.in_use(), 80);
        assert!(c.busy());
        drop(big);
        let _empty = c.acquire(0).await;
        assert!(!c.busy());
    }
}
