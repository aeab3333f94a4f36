//! Kafka-protocol requests from this broker to the other brokers' Kafka listeners: the
//! transaction coordinator's WriteTxnMarkers to partition leaders, and a partition
//! leader's AddPartitionsToTxn (verify only, KIP-890) to a transaction coordinator, as
//! Kafka's brokers send them. One `strom-client` connection per broker, opened on first
//! use and opened again after it breaks.
//!
//! Who leads what and where each broker listens comes from the control plane, which is
//! built after the coordinators: it is handed in once wired (`set_directory`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use strom_client::{ClientError, Connection};
use strom_log::TopicPartition;
use strom_wire::kafka_protocol::protocol::Request;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Where partitions are led and where brokers listen.
pub trait Directory: Send + Sync {
    /// The leader of a partition and its Kafka address (`host:port`), if known.
    fn leader(&self, tp: &TopicPartition) -> Option<(i32, String)>;
    /// This node's id.
    fn node_id(&self) -> i32;
}

/// Connections to the other brokers.
#[derive(Default)]
pub struct BrokerLinks {
    directory: OnceLock<Box<dyn Directory>>,
    conns: Mutex<HashMap<String, Arc<Connection>>>,
}

impl std::fmt::Debug for BrokerLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerLinks").finish_non_exhaustive()
    }
}

impl BrokerLinks {
    /// Sets where leaders and brokers are looked up (once, at wiring).
    pub fn set_directory(&self, directory: Box<dyn Directory>) {
        if self.directory.set(directory).is_err() {
            panic!("a directory is already set");
        }
    }

    /// The leader of `tp` when another node leads it: (node, address).
    pub fn remote_leader(&self, tp: &TopicPartition) -> Option<(i32, String)> {
        let d = self.directory.get()?;
        d.leader(tp).filter(|(id, _)| *id != d.node_id())
    }

    /// Sends `req` to the broker at `addr` at the highest version both sides know.
    pub async fn send<R: Request>(&self, addr: &str, req: &R) -> Result<R::Response, ClientError> {
        let conn = self.connection(addr).await?;
        let version = conn.version::<R>()?;
        let result = conn.send(req, version).await;
        if result.is_err() && conn.is_closed() {
            self.conns.lock().unwrap().remove(addr);
        }
        result
    }

    async fn connection(&self, addr: &str) -> Result<Arc<Connection>, ClientError> {
        if let Some(c) = self
            .conns
            .lock()
            .unwrap()
            .get(addr)
            .filter(|c| !c.is_closed())
        {
            return Ok(c.clone());
        }
        let conn = Arc::new(
            Connection::connect(addr, "strom-broker", CONNECT_TIMEOUT, REQUEST_TIMEOUT).await?,
        );
        self.conns
            .lock()
            .unwrap()
            .insert(addr.to_string(), conn.clone());
        Ok(conn)
    }
}
