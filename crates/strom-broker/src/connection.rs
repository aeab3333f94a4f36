//! One client connection: reads request frames, handles them in order, and writes the
//! answers in request order, even when a later request's answer is ready first
//! (pipelining). A slow answer (acks=all, long-poll fetch) holds back the ones behind it,
//! as Kafka's ordering guarantee requires, but not the reading and handling of them.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use strom_wire::{
    FrameCodec, WireError, decode_request, encode_response, unsupported_version_reply,
};
use tokio::net::TcpStream;
use tokio::sync::{broadcast, mpsc};
use tokio_util::codec::{FramedRead, FramedWrite};
use tracing::Instrument;

use crate::broker::Broker;
use crate::handlers::{Pending, Reply, dispatch};

/// Requests handled but not yet answered, per connection: back pressure on a client
/// that pipelines without reading its answers.
const MAX_IN_FLIGHT: usize = 64;

/// An answer on its way to the writer, in request order.
enum Outgoing {
    Ready(Bytes),
    Pending {
        response: Pending,
        correlation_id: i32,
        version: i16,
    },
}

/// Serves one connection until the client closes it, it misbehaves, or shutdown.
pub async fn serve(
    broker: Arc<Broker>,
    socket: TcpStream,
    peer: SocketAddr,
    mut shutdown: broadcast::Receiver<()>,
) {
    let _ = socket.set_nodelay(true);
    let (rd, wr) = socket.into_split();
    let mut frames = FramedRead::new(rd, FrameCodec::new(broker.config.max_frame_bytes));
    let (tx, rx) = mpsc::channel::<Outgoing>(MAX_IN_FLIGHT);
    let writer = tokio::spawn(write_loop(
        FramedWrite::new(wr, FrameCodec::new(usize::MAX)),
        rx,
        peer,
    ));

    loop {
        let frame = tokio::select! {
            frame = frames.next() => frame,
            _ = shutdown.recv() => {
                tracing::debug!(%peer, "closing connection for shutdown");
                break;
            }
        };
        let frame = match frame {
            None => break,
            Some(Ok(frame)) => frame.freeze(),
            Some(Err(WireError::Io(e))) => {
                tracing::debug!(%peer, error = %e, "connection read failed");
                break;
            }
            Some(Err(e)) => {
                tracing::warn!(%peer, error = %e, "closing connection: bad frame");
                break;
            }
        };
        match handle_frame(&broker, frame, peer) {
            Ok(Some(out)) => {
                if tx.send(out).await.is_err() {
                    break;
                }
            }
            Ok(None) => {}
            Err(reason) => {
                tracing::warn!(%peer, %reason, "closing connection");
                break;
            }
        }
    }
    drop(tx);
    let _ = writer.await;
}

/// Decodes and dispatches one frame. `Ok(None)`: nothing to send (acks=0). `Err`: close.
fn handle_frame(
    broker: &Arc<Broker>,
    frame: Bytes,
    peer: SocketAddr,
) -> Result<Option<Outgoing>, String> {
    let request = match decode_request(frame.clone()) {
        Ok(r) => r,
        Err(e @ WireError::UnsupportedVersion { .. }) => {
            return match unsupported_version_reply(&frame) {
                Ok(Some(reply)) => Ok(Some(Outgoing::Ready(reply))),
                Ok(None) => Err(e.to_string()),
                Err(e2) => Err(format!("{e}; {e2}")),
            };
        }
        Err(e) => return Err(e.to_string()),
    };
    let correlation_id = request.correlation_id();
    let version = request.api_version();
    let api = request.api_key;
    let client_id = request
        .header
        .client_id
        .as_ref()
        .map(|c| c.to_string())
        .unwrap_or_default();
    let span =
        tracing::debug_span!("request", ?api, version, correlation_id, client = %client_id, %peer);
    let _entered = span.enter();
    tracing::trace!("handling");
    let encode = |kind: &strom_wire::kafka_protocol::messages::ResponseKind| {
        encode_response(correlation_id, version, kind)
            .map_err(|e| format!("encoding response: {e}"))
    };
    match dispatch(broker, request) {
        Reply::Now(kind) => Ok(Some(Outgoing::Ready(encode(&kind)?))),
        Reply::Later(response) => Ok(Some(Outgoing::Pending {
            response: Box::pin(response.instrument(span.clone())),
            correlation_id,
            version,
        })),
        Reply::Nothing => Ok(None),
        Reply::Close(reason) => Err(reason),
    }
}

/// Writes answers in order, flushing whenever no further answer is queued.
async fn write_loop(
    mut out: FramedWrite<tokio::net::tcp::OwnedWriteHalf, FrameCodec>,
    mut rx: mpsc::Receiver<Outgoing>,
    peer: SocketAddr,
) {
    while let Some(item) = rx.recv().await {
        let bytes = match item {
            Outgoing::Ready(b) => b,
            Outgoing::Pending {
                response,
                correlation_id,
                version,
            } => {
                let kind = response.await;
                match encode_response(correlation_id, version, &kind) {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::error!(%peer, error = %e, "encoding response failed; closing");
                        return;
                    }
                }
            }
        };
        if let Err(e) = out.feed(bytes).await {
            tracing::debug!(%peer, error = %e, "connection write failed");
            return;
        }
        if rx.is_empty() {
            if let Err(e) = SinkExt::<Bytes>::flush(&mut out).await {
                tracing::debug!(%peer, error = %e, "connection flush failed");
                return;
            }
        }
    }
    let _ = SinkExt::<Bytes>::flush(&mut out).await;
}
