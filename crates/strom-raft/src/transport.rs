//! `PeerTransport`: Raft messages between nodes over TCP, one connection per peer in
//! each direction, messages of all groups batched into frames.
//!
//! ```text
//! hello  (once, from the dialing side): "STRMPEER" u16 version u64 node id
//! frame:  u32 length (of what follows) u32 count { u64 group u32 length <protobuf Message> } * count
//! ```
//! Sending never blocks: messages queue per peer and a task per peer writes whatever
//! has queued as one frame. A broken connection loses its queued messages (Raft
//! retransmits) and is redialled with backoff.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use protobuf::Message as _;
use raft::eraftpb::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::node::Transport;

const MAGIC: &[u8; 8] = b"STRMPEER";
const VERSION: u16 = 1;
/// Largest frame accepted from a peer.
const MAX_FRAME: usize = 256 << 20;
/// Bytes of messages gathered into one frame before it is written.
const FRAME_TARGET: usize = 4 << 20;

/// Where inbound messages go: (group, message).
pub type Inbound = Arc<dyn Fn(u64, Message) + Send + Sync>;

/// Told that messages to a peer were lost (it could not be reached or the connection
/// broke), so Raft stops assuming they arrived.
pub type Unreachable = Arc<dyn Fn(u64) + Send + Sync>;

/// The node's connections to its peers.
pub struct PeerTransport {
    id: u64,
    queues: HashMap<u64, mpsc::UnboundedSender<(u64, Message)>>,
    unreachable: Arc<OnceLock<Unreachable>>,
}

impl std::fmt::Debug for PeerTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerTransport")
            .field("id", &self.id)
            .field("peers", &self.queues.len())
            .finish()
    }
}

impl PeerTransport {
    /// Starts dialling every peer (`peers`: id → address, this node's own entry ignored)
    /// on the current tokio runtime.
    pub fn start(id: u64, peers: &HashMap<u64, String>) -> Arc<PeerTransport> {
        let mut queues = HashMap::new();
        let unreachable: Arc<OnceLock<Unreachable>> = Arc::new(OnceLock::new());
        for (&peer, addr) in peers {
            if peer == id {
                continue;
            }
            let (tx, rx) = mpsc::unbounded_channel();
            queues.insert(peer, tx);
            tokio::spawn(dial_loop(id, peer, addr.clone(), rx, unreachable.clone()));
        }
        Arc::new(PeerTransport {
            id,
            queues,
            unreachable,
        })
    }

    /// Sets who hears about lost messages (the node driver, once it exists).
    pub fn on_unreachable(&self, f: Unreachable) {
        let _ = self.unreachable.set(f);
    }

    pub fn id(&self) -> u64 {
        self.id
    }
}

impl Transport for PeerTransport {
    fn send(&self, to: u64, group: u64, msg: Message) {
        if let Some(q) = self.queues.get(&to) {
            let _ = q.send((group, msg));
        }
    }
}

/// Accepts peers' connections on `listener` and hands their messages to `inbound`.
pub async fn serve_peers(listener: TcpListener, inbound: Inbound) {
    loop {
        match listener.accept().await {
            Ok((stream, addr)) => {
                let inbound = inbound.clone();
                tokio::spawn(async move {
                    if let Err(e) = read_peer(stream, inbound).await {
                        tracing::debug!(peer = %addr, error = %e, "peer connection closed");
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "accepting a peer connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn read_peer(mut stream: TcpStream, inbound: Inbound) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut hello = [0u8; 18];
    stream.read_exact(&mut hello).await?;
    if &hello[..8] != MAGIC || hello[8..10] != VERSION.to_be_bytes() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not a Strom peer (bad hello)",
        ));
    }
    let from = u64::from_be_bytes(hello[10..18].try_into().unwrap());
    tracing::debug!(from, "peer connected");
    let mut len = [0u8; 4];
    loop {
        stream.read_exact(&mut len).await?;
        let n = u32::from_be_bytes(len) as usize;
        if n > MAX_FRAME {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("peer frame of {n} bytes"),
            ));
        }
        let mut buf = BytesMut::zeroed(n);
        stream.read_exact(&mut buf).await?;
        for (group, msg) in decode_frame(buf.freeze())? {
            inbound(group, msg);
        }
    }
}

fn invalid(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string())
}

/// Decodes one frame's messages (without its length prefix).
pub fn decode_frame(mut b: Bytes) -> std::io::Result<Vec<(u64, Message)>> {
    if b.remaining() < 4 {
        return Err(invalid("short frame"));
    }
    let count = b.get_u32() as usize;
    let mut out = Vec::with_capacity(count.min(4096));
    for _ in 0..count {
        if b.remaining() < 12 {
            return Err(invalid("short message header"));
        }
        let group = b.get_u64();
        let len = b.get_u32() as usize;
        if b.remaining() < len {
            return Err(invalid("short message"));
        }
        let body = b.split_to(len);
        let msg = Message::parse_from_carllerche_bytes(&body)
            .map_err(|e| invalid(&format!("bad raft message: {e}")))?;
        out.push((group, msg));
    }
    Ok(out)
}

/// Encodes messages as one frame, length prefix included.
pub fn encode_frame(msgs: &[(u64, Message)]) -> Vec<u8> {
    let mut b = BytesMut::with_capacity(64 * msgs.len());
    b.put_u32(0);
    b.put_u32(msgs.len() as u32);
    for (group, m) in msgs {
        b.put_u64(*group);
        let body = m.write_to_bytes().unwrap_or_default();
        b.put_u32(body.len() as u32);
        b.put_slice(&body);
    }
    let n = (b.len() - 4) as u32;
    b[..4].copy_from_slice(&n.to_be_bytes());
    b.to_vec()
}

async fn dial_loop(
    id: u64,
    peer: u64,
    addr: String,
    mut rx: mpsc::UnboundedReceiver<(u64, Message)>,
    unreachable: Arc<OnceLock<Unreachable>>,
) {
    let report = |lost: bool| {
        if lost && let Some(f) = unreachable.get() {
            f(peer);
        }
    };
    let mut backoff = Duration::from_millis(50);
    loop {
        let mut stream = match TcpStream::connect(&addr).await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(peer, %addr, error = %e, "cannot reach peer");
                report(drain(&mut rx));
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let mut hello = Vec::with_capacity(18);
        hello.extend_from_slice(MAGIC);
        hello.extend_from_slice(&VERSION.to_be_bytes());
        hello.extend_from_slice(&id.to_be_bytes());
        if stream.write_all(&hello).await.is_err() {
            continue;
        }
        backoff = Duration::from_millis(50);
        tracing::info!(peer, %addr, "connected to peer");
        loop {
            let Some(first) = rx.recv().await else { return };
            let mut batch = vec![first];
            let mut size = 0usize;
            while size < FRAME_TARGET {
                match rx.try_recv() {
                    Ok(m) => {
                        size += m.1.entries.iter().map(|e| e.data.len() + 32).sum::<usize>() + 32;
                        batch.push(m);
                    }
                    Err(_) => break,
                }
            }
            if let Err(e) = stream.write_all(&encode_frame(&batch)).await {
                tracing::info!(peer, %addr, error = %e, "peer connection lost");
                report(true);
                break;
            }
        }
    }
}

/// Throws away what queued while the peer was unreachable (Raft resends what matters);
/// true when anything was.
fn drain(rx: &mut mpsc::UnboundedReceiver<(u64, Message)>) -> bool {
    let mut any = false;
    while rx.try_recv().is_ok() {
        any = true;
    }
    any
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::eraftpb::{Entry, MessageType};

    #[test]
    fn frames_round_trip() {
        let mut m = Message::default();
        m.set_msg_type(MessageType::MsgAppend);
        m.to = 2;
        m.from = 1;
        let mut e = Entry::default();
        e.index = 5;
        e.data = Bytes::from_static(b"batch bytes");
        m.entries = vec![e].into();
        let frame = encode_frame(&[(7, m.clone()), (9, Message::default())]);
        let got = decode_frame(Bytes::copy_from_slice(&frame[4..])).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], (7, m));
        assert_eq!(got[1].0, 9);
        assert!(decode_frame(Bytes::copy_from_slice(&frame[4..frame.len() - 1])).is_err());
    }
}
