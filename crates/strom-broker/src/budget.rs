//! The memory budget for requests in flight (Kafka: `queued.max.request.bytes`): a
//! semaphore of bytes for the whole broker and one per connection. A frame's length is
//! taken from both as soon as its length prefix is read, before its body is read or
//! buffered, and given back when its answer has been written. A connection whose next
//! frame does not fit simply is not read from until it does: the client waits (TCP back
//! pressure), it is not disconnected.
//!
//! Decoding costs more than the frame: kafka-protocol turns a 3-byte topic name into a
//! 72-byte struct, and the answer has one entry per name. Once a frame is read, and
//! before it is decoded, its lease grows to what decoding and answering it is reckoned to
//! hold ([`strom_wire::decoded_cost`]), so the budget bounds memory, not just frame
//! bytes. Growing while holding is where waits could go round in a circle, so one request
//! at a time grows (the `growing` slot) and it grows its connection's share first.
//!
//! Charging the claimed length up front, as Kafka's memory pool does, means a frame once
//! started can always be completed (no two half-read frames wait on each other's bytes);
//! a client that claims a large frame and then stalls is closed by the request read
//! timeout, which gives its share back.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The broker-wide budget. Cloning shares it.
#[derive(Debug, Clone)]
pub(crate) struct Budget {
    global: Arc<Semaphore>,
    /// One permit: the request whose lease is growing.
    growing: Arc<Semaphore>,
    total: usize,
    per_connection: usize,
}

/// A connection's share: at most `per_connection` bytes of its frames in flight, except
/// that a single frame always fits (it cannot be split).
#[derive(Debug, Clone)]
pub(crate) struct ConnectionBudget {
    own: Arc<Semaphore>,
    cap: usize,
    global: Arc<Semaphore>,
    growing: Arc<Semaphore>,
    total: usize,
}

/// Bytes of one frame held in the budget; dropping it gives them back.
#[derive(Debug)]
pub(crate) struct Lease {
    own: Option<OwnedSemaphorePermit>,
    global: Option<OwnedSemaphorePermit>,
    /// Bytes held in the broker's budget.
    bytes: usize,
}

impl Budget {
    /// `total` bytes for all connections, `per_connection` for each.
    pub(crate) fn new(total: usize, per_connection: usize) -> Budget {
        // Permits are taken in u32 counts: a budget beyond 4 GiB is 4 GiB.
        let total = total.clamp(1, (u32::MAX as usize).min(Semaphore::MAX_PERMITS));
        Budget {
            global: Arc::new(Semaphore::new(total)),
            growing: Arc::new(Semaphore::new(1)),
            total,
            per_connection: per_connection.clamp(1, total),
        }
    }

    pub(crate) fn connection(&self) -> ConnectionBudget {
        ConnectionBudget {
            own: Arc::new(Semaphore::new(self.per_connection)),
            cap: self.per_connection,
            global: self.global.clone(),
            growing: self.growing.clone(),
            total: self.total,
        }
    }

    /// Bytes held by frames read and not yet answered, on all connections.
    pub(crate) fn in_use(&self) -> usize {
        self.total - self.global.available_permits()
    }

    pub(crate) fn total(&self) -> usize {
        self.total
    }
}

impl ConnectionBudget {
    /// Waits until a frame of `len` bytes fits this connection's share and the broker's
    /// budget, and takes it. The connection's share is taken first, so a connection
    /// waiting for its own answers to drain holds nothing of the broker's meanwhile.
    /// `len` must not exceed the broker's total (the frame size limit guarantees it).
    pub(crate) async fn acquire(&self, len: usize) -> Lease {
        if len == 0 {
            return Lease {
                own: None,
                global: None,
                bytes: 0,
            };
        }
        let own = u32::try_from(len.min(self.cap)).unwrap_or(u32::MAX);
        let global = u32::try_from(len).unwrap_or(u32::MAX);
        // The semaphores are never closed, so acquiring only fails if they were.
        let own = self.own.clone().acquire_many_owned(own).await.ok();
        let global = self.global.clone().acquire_many_owned(global).await.ok();
        Lease {
            own,
            global,
            bytes: len,
        }
    }

    /// Grows `lease` by `extra` bytes (what decoding its frame will hold), waiting like
    /// [`acquire`](Self::acquire). `false` when the lease could never grow that much: the
    /// request alone would exceed the broker's whole budget.
    pub(crate) async fn grow(&self, lease: &mut Lease, extra: usize) -> bool {
        if extra == 0 {
            return true;
        }
        if lease.bytes.saturating_add(extra) > self.total {
            return false;
        }
        // The connection's share first (it waits only for this connection's earlier
        // answers), at most the whole share for one request.
        let held_own = lease.own.as_ref().map_or(0, |p| p.num_permits());
        let own = extra.min(self.cap - held_own.min(self.cap));
        if own > 0
            && let Ok(p) = self.own.clone().acquire_many_owned(own as u32).await
        {
            match &mut lease.own {
                Some(held) => held.merge(p),
                None => lease.own = Some(p),
            }
        }
        let Ok(_slot) = self.growing.acquire().await else {
            return false;
        };
        let Ok(p) = self.global.clone().acquire_many_owned(extra as u32).await else {
            return false;
        };
        match &mut lease.global {
            Some(held) => held.merge(p),
            None => lease.global = Some(p),
        }
        lease.bytes += extra;
        true
    }

    /// True while any frame of this connection is read and not yet answered.
    #[cfg(test)]
    pub(crate) fn busy(&self) -> bool {
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
    async fn a_lease_grows_within_the_budget_and_gives_everything_back() {
        let budget = Budget::new(100, 30);
        let c = budget.connection();
        let mut lease = c.acquire(10).await;
        assert!(c.grow(&mut lease, 50).await);
        assert_eq!(budget.in_use(), 60);
        assert!(!c.grow(&mut lease, 41).await, "beyond the whole budget");
        let other = budget.connection();
        assert!(
            tokio::time::timeout(Duration::from_millis(50), other.acquire(41))
                .await
                .is_err()
        );
        drop(lease);
        assert_eq!(budget.in_use(), 0);
        assert!(!c.busy());
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
