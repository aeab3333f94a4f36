//! Node identity that must survive restarts: the cluster id and the producer-id blocks
//! handed out to idempotent producers, in `<data>/node.json`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// Producer ids are reserved on disk this many at a time, so a restart never hands out an
/// id twice while most InitProducerId requests cost no write.
const PRODUCER_ID_BLOCK: i64 = 1000;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct NodeFile {
    cluster_id: String,
    /// Every producer id below this may have been handed out.
    producer_ids_reserved_until: i64,
}

/// The persisted identity of this node.
#[derive(Debug)]
pub struct NodeState {
    path: PathBuf,
    pub cluster_id: String,
    ids: Mutex<IdBlock>,
}

#[derive(Debug)]
struct IdBlock {
    next: i64,
    reserved_until: i64,
}

impl NodeState {
    pub fn open(data_dir: &Path) -> std::io::Result<NodeState> {
        std::fs::create_dir_all(data_dir)?;
        let path = data_dir.join("node.json");
        let file = match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let f = NodeFile {
                    cluster_id: new_cluster_id(),
                    producer_ids_reserved_until: 0,
                };
                write_atomically(&path, &f)?;
                f
            }
            Err(e) => return Err(e),
        };
        Ok(NodeState {
            path,
            cluster_id: file.cluster_id,
            ids: Mutex::new(IdBlock {
                next: file.producer_ids_reserved_until,
                reserved_until: file.producer_ids_reserved_until,
            }),
        })
    }

    /// A producer id never handed out before on this node.
    pub fn next_producer_id(&self) -> std::io::Result<i64> {
        let mut ids = self.ids.lock().unwrap();
        if ids.next >= ids.reserved_until {
            let until = ids.reserved_until + PRODUCER_ID_BLOCK;
            write_atomically(
                &self.path,
                &NodeFile {
                    cluster_id: self.cluster_id.clone(),
                    producer_ids_reserved_until: until,
                },
            )?;
            ids.reserved_until = until;
        }
        let id = ids.next;
        ids.next += 1;
        Ok(id)
    }
}

impl NodeState {
    /// A producer id unique in the cluster: node `node_id` in the high bits, this node's
    /// persisted counter below.
    pub fn cluster_producer_id(&self, node_id: i32) -> std::io::Result<i64> {
        let local = self.next_producer_id()?;
        Ok((i64::from(node_id) << 40) | (local & ((1 << 40) - 1)))
    }
}

/// A Kafka-style cluster id: 16 random bytes in URL-safe base64 without padding.
fn new_cluster_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let mut out = String::new();
    let mut acc: u32 = 0;
    let mut bits = 0;
    for b in bytes {
        acc = (acc << 8) | b as u32;
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            out.push(ALPHABET[((acc >> bits) & 63) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (6 - bits)) & 63) as usize] as char);
    }
    out
}

fn write_atomically(path: &Path, file: &NodeFile) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&serde_json::to_vec_pretty(file).map_err(std::io::Error::other)?)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn producer_ids_are_unique_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let node = NodeState::open(dir.path()).unwrap();
        let a: Vec<i64> = (0..3).map(|_| node.next_producer_id().unwrap()).collect();
        let cluster = node.cluster_id.clone();
        assert_eq!(cluster.len(), 22);
        drop(node);
        let node = NodeState::open(dir.path()).unwrap();
        assert_eq!(node.cluster_id, cluster);
        let b = node.next_producer_id().unwrap();
        assert!(a.iter().all(|&x| x < b), "{a:?} then {b}");
    }
}
