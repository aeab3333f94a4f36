//! The simulated network: messages in flight, delivered in random order, some lost,
//! none crossing a partition.

use std::collections::BTreeSet;

use rand::Rng;
use rand::rngs::StdRng;
use strom_raft::Message;

#[derive(Debug)]
pub(crate) struct Network {
    in_flight: Vec<(u64, u64, Message)>,
    drop_rate: f64,
    /// Directed links that are cut: (from, to).
    cut: BTreeSet<(u64, u64)>,
}

impl Network {
    pub(crate) fn new(drop_rate: f64) -> Network {
        Network {
            in_flight: Vec::new(),
            drop_rate,
            cut: BTreeSet::new(),
        }
    }

    /// Queues a node's outgoing messages (some are lost on the way).
    pub(crate) fn send_all(&mut self, out: Vec<(u64, Message)>, rng: &mut StdRng) {
        for (group, m) in out {
            if rng.r#gen::<f64>() < self.drop_rate || self.cut.contains(&(m.from, m.to)) {
                continue;
            }
            self.in_flight.push((m.to, group, m));
        }
    }

    /// Takes a random message in flight: (to, group, message).
    pub(crate) fn take(&mut self, rng: &mut StdRng) -> Option<(u64, u64, Message)> {
        if self.in_flight.is_empty() {
            return None;
        }
        // Mostly in order, sometimes overtaken: pick among the oldest few.
        let window = self.in_flight.len().min(4);
        let i = rng.gen_range(0..window);
        let (to, group, m) = self.in_flight.remove(i);
        if self.cut.contains(&(m.from, to)) {
            return None;
        }
        Some((to, group, m))
    }

    /// Drops everything addressed to or from a crashed node.
    pub(crate) fn drop_node(&mut self, id: u64) {
        self.in_flight
            .retain(|(to, _, m)| *to != id && m.from != id);
    }

    /// Cuts `id` off from every other node, both ways.
    pub(crate) fn isolate(&mut self, id: u64, nodes: u64) {
        for other in 1..=nodes {
            if other != id {
                self.cut.insert((id, other));
                self.cut.insert((other, id));
            }
        }
    }

    pub(crate) fn is_partitioned(&self) -> bool {
        !self.cut.is_empty()
    }

    pub(crate) fn heal(&mut self) {
        self.cut.clear();
    }
}
