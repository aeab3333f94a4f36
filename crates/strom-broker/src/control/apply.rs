//! Applying committed metadata commands on this node: the topic store, and the local
//! partition replicas each topic change starts or stops.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use strom_log::TopicPartition;
use strom_wire::ErrorCode;

use super::ControlPlane;
use crate::cluster::{Applied, decode_commands};
use crate::errors::{Failure, storage};
use crate::groups::OFFSETS_TOPIC;
use crate::partition_dirs;
use crate::topics::{TopicMeta, log_config};
use crate::txns::TXN_TOPIC;

/// Threads that start a topic's local partitions (logs and Raft groups) at once.
const PARTITION_START_THREADS: usize = 8;

impl ControlPlane {
    /// Applies committed metadata commands (the metadata group's listener).
    pub(super) fn apply_metadata(self: &Arc<Self>, entries: Vec<strom_raft::raft::eraftpb::Entry>) {
        let replaying = self.replaying.lock().unwrap();
        for e in entries {
            if e.data.is_empty() {
                continue;
            }
            for cmd in decode_commands(&e.data) {
                let applied = self.meta.write().unwrap().apply(cmd);
                match applied {
                    Applied::Nothing | Applied::Broker(_) => {}
                    Applied::TopicCreated(meta) | Applied::TopicChanged(meta) => {
                        if meta.name == OFFSETS_TOPIC {
                            self.groups.offsets_topic_exists(meta.partitions);
                            self.txns.offsets_topic_exists(meta.partitions);
                        } else if meta.name == TXN_TOPIC {
                            self.txns.topic_exists(meta.partitions);
                        }
                        // Replicas first: whoever sees the topic finds its partitions.
                        if !*replaying {
                            // Failures are logged per partition.
                            let _ = self.ensure_local_partitions(&meta);
                        }
                        self.topics.set(meta);
                    }
                    Applied::TopicDeleted(meta) => {
                        self.topics.remove(&meta.name);
                        if *replaying {
                            // Its files were removed when the delete was first applied
                            // (what a crash left is removed by `finish_replay`), and its
                            // offsets' tombstones are in `__consumer_offsets`.
                            continue;
                        }
                        self.remove_local_partitions(&meta);
                        self.groups.topics_deleted(std::slice::from_ref(&meta.name));
                        tracing::info!(topic = %meta.name, id = %meta.id, "deleted topic");
                    }
                }
            }
        }
        drop(replaying);
        self.meta_version.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Opens (creating) the log and starts the Raft group of every partition of `meta`
    /// with a replica on this node, and applies the topic's settings to them.
    fn ensure_local_partitions(self: &Arc<Self>, meta: &TopicMeta) -> Result<(), Failure> {
        let me = self.config.node_id;
        let local: Vec<(&TopicMeta, i32)> = (0..meta.partitions)
            .filter(|&p| meta.group(p).is_some() && meta.replicas_of(p).contains(&me))
            .map(|p| (meta, p))
            .collect();
        self.start_local_partitions(&local)
    }

    /// Opens (creating) the log and starts the Raft group of each partition, and applies
    /// its topic's settings to it. Starting a group waits for the disk (its first term
    /// is fsynced before it leads), so many partitions are started by several threads
    /// at once: the disk takes concurrent fsyncs of different files about as fast as
    /// one, and a 10,000-partition topic is then created (or restarted) in seconds
    /// rather than minutes.
    pub(super) fn start_local_partitions(
        self: &Arc<Self>,
        local: &[(&TopicMeta, i32)],
    ) -> Result<(), Failure> {
        let threads = PARTITION_START_THREADS.min(local.len().div_ceil(64)).max(1);
        // One partition that cannot start (its disk, a foreign directory) must not keep
        // the others from starting: each failure is logged, the first returned.
        let start = |meta: &TopicMeta, p: i32| {
            let r = self.ensure_local_partition(meta, p);
            if let Err(f) = &r {
                tracing::error!(topic = %meta.name, partition = p, error = %f.message, "cannot start a local replica");
            }
            r
        };
        let next = std::sync::atomic::AtomicUsize::new(0);
        let work = || -> Result<(), Failure> {
            let mut first = Ok(());
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(meta, p)) = local.get(i) else {
                    return first;
                };
                if let Err(f) = start(meta, p) {
                    first = first.and(Err(f));
                }
            }
        };
        if threads == 1 {
            return work();
        }
        std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads).map(|_| s.spawn(work)).collect();
            workers
                .into_iter()
                .map(|w| w.join().expect("a partition start thread panicked"))
                .fold(Ok(()), Result::and)
        })
    }

    /// Opens (creating) one partition's log and starts its Raft group. The directory
    /// `<topic>-<p>` is this topic's only if its `partition.metadata` says so (or says
    /// nothing: a legacy directory, adopted); one left by a deleted topic of the same
    /// name is removed first, and one of a topic id this node does not know is left
    /// alone and the partition not started here.
    fn ensure_local_partition(self: &Arc<Self>, meta: &TopicMeta, p: i32) -> Result<(), Failure> {
        let replicas = meta.replicas_of(p);
        let Some(group) = meta.group(p) else {
            return Ok(());
        };
        let config = log_config(&self.config, &meta.configs);
        let me = self.config.node_id;
        let tp = TopicPartition::new(meta.name.clone(), p);
        let logs = self.partitions.logs();
        if self.partitions.is_started(group) {
            self.partitions.set_config(&tp, config);
            return Ok(());
        }
        let dir = logs.data_dir().join(tp.dir_name());
        let storage = |e: std::io::Error| storage(format!("{}: {e}", dir.display()));
        if logs.contains(&tp) {
            match partition_dirs::read(&dir) {
                Some(id) if id == meta.id => {}
                None => partition_dirs::write(&dir, meta.id).map_err(storage)?,
                Some(other) if self.meta.read().unwrap().was_deleted(other) => {
                    tracing::info!(partition = %tp.dir_name(), old_id = %other, "removing the log a deleted topic of this name left");
                    logs.delete(&tp)?;
                }
                Some(other) => {
                    return Err(Failure::new(
                        ErrorCode::KafkaStorageError,
                        format!(
                            "{} holds topic id {other}, not {}, and that topic is unknown here: left untouched",
                            dir.display(),
                            meta.id
                        ),
                    ));
                }
            }
        }
        if !logs.contains(&tp) {
            // The id first: a log's files never exist without it (but after a crash).
            partition_dirs::write(&dir, meta.id).map_err(storage)?;
            logs.create(&tp, Some(config.clone()))?;
        }
        let voters: Vec<u64> = replicas.iter().map(|&r| r as u64).collect();
        // A new group's preferred leader stands at once rather than after an
        // election timeout, so the topic is usable sooner and leaders spread.
        let campaign = replicas.len() > 1 && replicas[0] == me;
        self.partitions.start(tp, group, &voters, config, campaign)
    }

    /// Stops the local replicas of a deleted topic and removes their logs, unless a
    /// directory carries another topic's id (never this topic's files, then).
    fn remove_local_partitions(&self, meta: &TopicMeta) {
        for p in 0..meta.partitions {
            let tp = TopicPartition::new(meta.name.clone(), p);
            self.partitions.stop(&tp);
            let logs = self.partitions.logs();
            if !logs.contains(&tp) {
                continue;
            }
            let dir = logs.data_dir().join(tp.dir_name());
            match partition_dirs::read(&dir) {
                Some(id) if id != meta.id => {
                    tracing::warn!(partition = %tp.dir_name(), id = %id, deleted = %meta.id, "not removing a log of another topic id");
                    continue;
                }
                _ => {}
            }
            if let Err(e) = logs.delete(&tp) {
                tracing::error!(partition = %tp.dir_name(), error = %e, "deleting log failed");
            }
        }
    }
}
