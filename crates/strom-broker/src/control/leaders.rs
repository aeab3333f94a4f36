//! What every node knows about partitions it holds no replica of: each node tells its
//! peers, twice a second, which groups it leads (term and in-sync replicas), over the
//! Raft peer connections (a message on the reserved group [`GOSSIP_GROUP`]). Metadata
//! and `cluster info` then name the right leader and ISR from any node, not only from
//! the partition's replicas. A report older than [`STALE`] is ignored.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use strom_log::TopicPartition;
use strom_raft::{Message, Transport};

/// The group id that carries leadership reports instead of Raft messages.
pub(crate) const GOSSIP_GROUP: u64 = u64::MAX;
/// How often a node reports.
pub(crate) const INTERVAL: Duration = Duration::from_millis(500);
/// Reports older than this are not trusted.
const STALE: Duration = Duration::from_secs(2);

/// One led group: its term and the replicas in sync with the leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Led {
    pub group: u64,
    pub term: u64,
    pub in_sync: Vec<i32>,
}

/// A remote leader as last reported.
#[derive(Debug, Clone)]
struct Known {
    leader: i32,
    term: u64,
    in_sync: Vec<i32>,
    at: Instant,
}

/// Leadership reported by the other nodes, by group.
#[derive(Debug, Default)]
pub(crate) struct RemoteLeaders {
    groups: RwLock<HashMap<u64, Known>>,
}

impl RemoteLeaders {
    /// Takes a node's report; a higher term wins, an equal one refreshes.
    pub(crate) fn record(&self, from: i32, led: Vec<Led>) {
        let now = Instant::now();
        let mut g = self.groups.write().unwrap();
        for l in led {
            match g.get(&l.group) {
                Some(k) if k.term > l.term && now.duration_since(k.at) < STALE => {}
                _ => {
                    g.insert(
                        l.group,
                        Known {
                            leader: from,
                            term: l.term,
                            in_sync: l.in_sync,
                            at: now,
                        },
                    );
                }
            }
        }
    }

    /// (leader, term, in-sync replicas) of a group, if a fresh report names one.
    pub(crate) fn get(&self, group: u64) -> Option<(i32, u64, Vec<i32>)> {
        let g = self.groups.read().unwrap();
        let k = g.get(&group)?;
        (k.at.elapsed() < STALE).then(|| (k.leader, k.term, k.in_sync.clone()))
    }
}

/// A report as the message the transport carries (its `context`).
pub(crate) fn encode(from: u64, led: &[Led]) -> Message {
    let mut b = BytesMut::with_capacity(4 + led.len() * 24);
    b.put_u32(led.len() as u32);
    for l in led {
        b.put_u64(l.group);
        b.put_u64(l.term);
        b.put_u8(l.in_sync.len().min(255) as u8);
        for &r in l.in_sync.iter().take(255) {
            b.put_i32(r);
        }
    }
    Message {
        from,
        context: b.freeze(),
        ..Message::default()
    }
}

/// The report in a gossip message; `None` when it is malformed.
pub(crate) fn decode(msg: &Message) -> Option<Vec<Led>> {
    let mut b: Bytes = msg.context.clone();
    if b.remaining() < 4 {
        return None;
    }
    let n = b.get_u32() as usize;
    let mut out = Vec::with_capacity(n.min(1 << 16));
    for _ in 0..n {
        if b.remaining() < 17 {
            return None;
        }
        let group = b.get_u64();
        let term = b.get_u64();
        let k = b.get_u8() as usize;
        if b.remaining() < 4 * k {
            return None;
        }
        let in_sync = (0..k).map(|_| b.get_i32()).collect();
        out.push(Led {
            group,
            term,
            in_sync,
        });
    }
    Some(out)
}

impl super::ControlPlane {
    /// The leader of any partition of the cluster as this node knows it: from the local
    /// replica, else `None`.
    pub fn leader_of(&self, tp: &TopicPartition) -> Option<(i32, i32)> {
        match self.partitions.status(tp) {
            // An offline replica knows no leader of its own; the leader's reports do.
            Some(s) if !s.offline => s.leader.map(|l| (l, s.leader_epoch())),
            _ => {
                let group = self.topics.get(&tp.topic)?.group(tp.partition)?;
                let (leader, term, _) = self.remote_leaders.get(group)?;
                Some((leader, term as i32))
            }
        }
    }

    /// The replicas in sync with the leader: from the local group when this node leads
    /// the partition, else from the leader's last report.
    pub fn in_sync_replicas(&self, tp: &TopicPartition) -> Option<Vec<i32>> {
        let group = self.topics.get(&tp.topic)?.group(tp.partition)?;
        if let Some(isr) = self.partitions.in_sync_if_leader(group) {
            return Some(isr);
        }
        self.remote_leaders.get(group).map(|(_, _, isr)| isr)
    }

    /// Tells every peer which partitions this node leads (`leaders.rs`).
    pub fn report_leadership(&self) {
        let Some(t) = &self.peer_transport else {
            return;
        };
        let led: Vec<Led> = self
            .partitions
            .led()
            .into_iter()
            .map(|(group, term, in_sync)| Led {
                group,
                term,
                in_sync,
            })
            .collect();
        let me = self.config.node_id;
        for &peer in self.config.peers.keys().filter(|&&p| p != me) {
            t.send(peer as u64, GOSSIP_GROUP, encode(me as u64, &led));
        }
    }

    /// A peer's leadership report arrived.
    pub fn leadership_reported(&self, msg: &strom_raft::Message) {
        if let Some(led) = decode(msg) {
            self.remote_leaders.record(msg.from as i32, led);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip_and_higher_terms_win() {
        let led = vec![
            Led {
                group: 7,
                term: 3,
                in_sync: vec![1, 2, 3],
            },
            Led {
                group: 9,
                term: 1,
                in_sync: vec![2],
            },
        ];
        let m = encode(2, &led);
        assert_eq!(decode(&m).unwrap(), led);
        let mut short = m.clone();
        short.context = short.context.slice(..10);
        assert!(decode(&short).is_none());

        let r = RemoteLeaders::default();
        r.record(2, led);
        assert_eq!(r.get(7), Some((2, 3, vec![1, 2, 3])));
        // A stale claim from an older term does not replace a newer one.
        r.record(
            1,
            vec![Led {
                group: 7,
                term: 2,
                in_sync: vec![1],
            }],
        );
        assert_eq!(r.get(7).unwrap().0, 2);
        r.record(
            3,
            vec![Led {
                group: 7,
                term: 4,
                in_sync: vec![3, 1],
            }],
        );
        assert_eq!(r.get(7).unwrap().0, 3);
        assert_eq!(r.get(8), None);
    }
}
