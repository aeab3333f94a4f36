//! One client connection: reads request frames, handles them in order, and writes the
//! answers in request order, even when a later request's answer is ready first
//! (pipelining). A slow answer (acks=all, long-poll fetch) holds back the ones behind it,
//! as Kafka's ordering guarantee requires, but not the reading and handling of them;
//! except behind a request whose effects must come before the next one's
//! (`Reply::First`: a produce waiting for a remote KIP-890 check), which is run to its
//! end before the next frame is read, as Kafka handles every request.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use strom_wire::{
    FetchPart, WireError, decode_request, encode_fetch_response, encode_response,
    unsupported_version_reply,
};
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, mpsc};
use tracing::Instrument;

use crate::broker::Broker;
use crate::budget::{Budget, Lease};
use crate::fetch_out::FetchOut;
use crate::frames::{FrameReader, ReadError};
use crate::handlers::{Pending, Reply, Response, dispatch};
use crate::metrics::outcome::{fetch_error, response_error};
use crate::metrics::{Closed, Metrics, Outcome, RequestTimer};
use crate::registry::ConnState;
use crate::sendfile::sendfile_all;

/// Requests handled but not yet answered, per connection: back pressure on a client
/// that pipelines without reading its answers.
const MAX_IN_FLIGHT: usize = 64;

/// An answer on its way to the writer, in request order.
enum Outgoing {
    Ready(Bytes),
    Fetch {
        out: FetchOut,
        correlation_id: i32,
        version: i16,
    },
    Pending {
        response: Pending,
        correlation_id: i32,
        version: i16,
    },
}

/// What is needed to account for a request once its answer is written: its timer (for
/// `strom_requests_total` and the latency histogram), its outcome when known before the
/// answer was encoded, and its span, so the "answered" event carries the request fields.
/// Dropping it (answer written, or the connection gone) gives the request's bytes back
/// to the budget and tells the connection's state it is answered.
struct Done {
    timer: Option<RequestTimer>,
    outcome: Option<i16>,
    span: tracing::Span,
    _in_flight: InFlight,
}

/// A request between reading its frame and writing its answer.
struct InFlight {
    _lease: Lease,
    /// An encoded answer's bytes, in the connection's share for queued answers.
    answer: Option<OwnedSemaphorePermit>,
    state: Arc<ConnState>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.state.request_answered();
    }
}

/// Serves one connection until the client closes it, it misbehaves, it is idle too long
/// or asked to close (to make room for a new one), or shutdown.
pub(crate) async fn serve(
    broker: Arc<Broker>,
    socket: TcpStream,
    peer: SocketAddr,
    state: Arc<ConnState>,
    budget: &Budget,
    mut shutdown: broadcast::Receiver<()>,
) {
    let _ = socket.set_nodelay(true);
    let (rd, wr) = socket.into_split();
    let config = &broker.config();
    let mut frames = FrameReader::new(
        rd,
        config.max_frame_bytes,
        config.connections_max_idle,
        config.request_read_timeout,
        budget.connection(),
    );
    // Encoded answers waiting for a client that does not read: bounded like requests.
    let answer_bytes = config
        .max_request_bytes_per_connection
        .clamp(1, u32::MAX as usize);
    let answers = Arc::new(Semaphore::new(answer_bytes));
    let (tx, rx) = mpsc::channel::<(Outgoing, Done)>(MAX_IN_FLIGHT);
    let mut writer = tokio::spawn(write_loop(
        BufWriter::with_capacity(64 * 1024, wr),
        rx,
        peer,
        broker.metrics().clone(),
        config.connections_max_idle,
    ));
    // Set once the writer gave up (the client stopped reading, or the socket failed):
    // then reading stops too, and nothing more is handled for nobody.
    let mut writer_gone = false;

    'frames: loop {
        let frame = tokio::select! {
            frame = frames.next(&state) => frame,
            _ = shutdown.recv() => {
                tracing::debug!(%peer, "closing connection for shutdown");
                break;
            }
            _ = state.close_requested() => {
                broker.metrics().connection_closed(Closed::Evicted);
                break;
            }
            _ = &mut writer => {
                writer_gone = true;
                break;
            }
        };
        let frame = match frame {
            Ok(None) => break,
            Ok(Some(frame)) => frame,
            Err(e @ (ReadError::Io(_) | ReadError::Truncated)) => {
                tracing::debug!(%peer, error = %e, "connection read failed");
                break;
            }
            Err(e @ ReadError::Idle(_)) => {
                tracing::debug!(%peer, reason = %e, "closing idle connection");
                broker.metrics().connection_closed(Closed::Idle);
                break;
            }
            Err(e @ ReadError::Timeout(_)) => {
                tracing::info!(%peer, reason = %e, "closing connection");
                broker.metrics().connection_closed(Closed::RequestTimeout);
                break;
            }
            Err(e) => {
                tracing::warn!(%peer, error = %e, "closing connection: bad frame");
                break;
            }
        };
        // Decoding holds more than the frame (see budget.rs): take that too, first.
        let mut lease = frame.lease;
        let mut extra = strom_wire::decoded_cost(&frame.body)
            .unwrap_or(0)
            .saturating_sub(frame.body.len());
        if frame.body.get(..2) == Some(&[0, 0][..]) {
            // Produce (API key 0): proposing copies every batch (it is stamped with its
            // offset and epoch) and Raft's entries hold the copy until it is written, so
            // an append holds about three times its frame (docs/limits.md).
            // Capped so the largest frame the settings allow is still taken.
            let room = config
                .queued_max_request_bytes
                .saturating_sub(frame.body.len());
            extra = extra
                .saturating_add(frame.body.len().saturating_mul(2))
                .min(room);
        }
        let grown = tokio::select! {
            grown = frames.budget().grow(&mut lease, extra) => grown,
            _ = shutdown.recv() => break,
        };
        if !grown {
            tracing::warn!(
                %peer,
                bytes = frame.body.len(),
                decoded = extra,
                budget = config.queued_max_request_bytes,
                "closing connection: the request would hold more than the whole request budget"
            );
            break;
        }
        let in_flight = InFlight {
            _lease: lease,
            answer: None,
            state: state.clone(),
        };
        let mut handled = handle_frame(&broker, frame.body, Instant::now(), peer, in_flight);
        // A request whose effects must come before the next one's is run to its end
        // here, before the next frame is read.
        while let Ok(Handled::First(first)) = handled {
            let reply = tokio::select! {
                reply = first.run.instrument(first.span.clone()) => reply,
                _ = shutdown.recv() => break 'frames,
            };
            let _entered = first.span.enter();
            handled = answer(
                broker.metrics(),
                reply,
                first.done,
                first.correlation_id,
                first.version,
                &first.span,
            );
        }
        match handled {
            Ok(Handled::Answer(out, mut done)) => {
                if let Outgoing::Ready(b) = &out {
                    // Wait (not reading) while earlier answers fill the share.
                    let n = b.len().clamp(1, answer_bytes) as u32;
                    done._in_flight.answer = tokio::select! {
                        p = answers.clone().acquire_many_owned(n) => p.ok(),
                        _ = shutdown.recv() => break,
                    };
                }
                if tx.send((out, done)).await.is_err() {
                    break;
                }
            }
            Ok(Handled::Silent) => {}
            Ok(Handled::First(_)) => unreachable!("run above"),
            Err(reason) => {
                tracing::warn!(%peer, %reason, "closing connection");
                break;
            }
        }
    }
    drop(tx);
    if !writer_gone {
        let _ = writer.await;
    }
}

/// What handling a frame came to.
enum Handled {
    /// Queue this answer for the writer.
    Answer(Outgoing, Done),
    /// Nothing to send (acks=0).
    Silent,
    /// Run this before the next frame is handled, then answer with what it gives.
    First(First),
}

struct First {
    run: std::pin::Pin<Box<dyn std::future::Future<Output = Reply> + Send>>,
    done: Done,
    correlation_id: i32,
    version: i16,
    span: tracing::Span,
}

/// Decodes and dispatches one frame, read at `started`. `Err`: close.
fn handle_frame(
    broker: &Arc<Broker>,
    frame: Bytes,
    started: Instant,
    peer: SocketAddr,
    in_flight: InFlight,
) -> Result<Handled, String> {
    let request = match decode_request(frame.clone()) {
        Ok(r) => r,
        Err(e @ WireError::UnsupportedVersion { .. }) => {
            return match unsupported_version_reply(&frame) {
                Ok(Some(reply)) => {
                    let api_key = frame
                        .get(..2)
                        .map_or(-1, |k| i16::from_be_bytes([k[0], k[1]]));
                    let done = Done {
                        timer: broker.metrics().start(api_key, started),
                        outcome: Some(strom_wire::ErrorCode::UnsupportedVersion.code()),
                        span: tracing::Span::none(),
                        _in_flight: in_flight,
                    };
                    Ok(Handled::Answer(Outgoing::Ready(reply), done))
                }
                Ok(None) => Err(e.to_string()),
                Err(e2) => Err(format!("{e}; {e2}")),
            };
        }
        Err(e) => return Err(e.to_string()),
    };
    let correlation_id = request.correlation_id();
    let version = request.api_version();
    let api = request.api_key;
    // The field values are only computed when the span is enabled (debug level).
    let span = tracing::debug_span!(
        "request",
        api = crate::metrics::api_name(api),
        api_version = version,
        correlation_id,
        client_id = request.header.client_id.as_deref().unwrap_or(""),
        %peer
    );
    let _entered = span.enter();
    tracing::trace!("handling");
    let done = Done {
        timer: broker.metrics().start(api as i16, started),
        outcome: None,
        span: span.clone(),
        _in_flight: in_flight,
    };
    let reply = dispatch(broker, request, peer);
    answer(
        broker.metrics(),
        reply,
        done,
        correlation_id,
        version,
        &span,
    )
}

/// Turns a handler's reply into what the connection does next.
fn answer(
    metrics: &Metrics,
    reply: Reply,
    mut done: Done,
    correlation_id: i32,
    version: i16,
    span: &tracing::Span,
) -> Result<Handled, String> {
    match reply {
        Reply::Now(r) => match *r {
            Response::Kind(kind) => {
                done.outcome = Some(response_error(&kind));
                encode_response(correlation_id, version, &kind)
                    .map(|b| Handled::Answer(Outgoing::Ready(b), done))
                    .map_err(|e| format!("encoding response: {e}"))
            }
            Response::Fetch(out) => Ok(Handled::Answer(
                Outgoing::Fetch {
                    out,
                    correlation_id,
                    version,
                },
                done,
            )),
        },
        Reply::Later(response) => Ok(Handled::Answer(
            Outgoing::Pending {
                response: Box::pin(response.instrument(span.clone())),
                correlation_id,
                version,
            },
            done,
        )),
        Reply::First(run) => Ok(Handled::First(First {
            run,
            done,
            correlation_id,
            version,
            span: span.clone(),
        })),
        Reply::Nothing => {
            finish(metrics, done, Outcome::Code(0));
            Ok(Handled::Silent)
        }
        Reply::Close(reason) => {
            finish(metrics, done, Outcome::Closed);
            Err(reason)
        }
    }
}

fn finish(metrics: &Metrics, done: Done, outcome: Outcome) {
    let Some(timer) = done.timer else {
        return;
    };
    let took = metrics.finish(timer, outcome);
    if !done.span.is_disabled() {
        let error = match outcome {
            Outcome::Code(code) => {
                strom_wire::ErrorCode::from_code(code).map_or("OTHER", |c| c.name())
            }
            Outcome::Closed => "CONNECTION_CLOSED",
        };
        done.span.in_scope(|| {
            tracing::debug!(error, took_us = took.as_micros() as u64, "answered");
        });
    }
}

/// Writes answers in order, flushing whenever no further answer is queued. Returning
/// closes the write side (and so the connection).
async fn write_loop(
    mut out: BufWriter<OwnedWriteHalf>,
    mut rx: mpsc::Receiver<(Outgoing, Done)>,
    peer: SocketAddr,
    metrics: Arc<Metrics>,
    idle: std::time::Duration,
) {
    // An answer that cannot be written for `connections_max_idle_ms` means the client
    // stopped reading: close rather than hold its requests' budget forever.
    let stalled = |_| {
        metrics.connection_closed(Closed::Idle);
        std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no answer written for {} ms", idle.as_millis()),
        )
    };
    while let Some((item, mut done)) = rx.recv().await {
        let result = match item {
            Outgoing::Ready(b) => tokio::time::timeout(idle, write_frame(&mut out, &b))
                .await
                .unwrap_or_else(|e| Err(stalled(e))),
            Outgoing::Fetch {
                out: fetch,
                correlation_id,
                version,
            } => tokio::time::timeout(
                idle,
                write_fetch(
                    &mut out,
                    fetch,
                    correlation_id,
                    version,
                    &mut done,
                    &metrics,
                ),
            )
            .await
            .unwrap_or_else(|e| Err(stalled(e))),
            Outgoing::Pending {
                response,
                correlation_id,
                version,
            } => match response.await {
                Response::Fetch(fetch) => tokio::time::timeout(
                    idle,
                    write_fetch(
                        &mut out,
                        fetch,
                        correlation_id,
                        version,
                        &mut done,
                        &metrics,
                    ),
                )
                .await
                .unwrap_or_else(|e| Err(stalled(e))),
                Response::Kind(kind) => {
                    done.outcome = Some(response_error(&kind));
                    match encode_response(correlation_id, version, &kind) {
                        Ok(b) => tokio::time::timeout(idle, write_frame(&mut out, &b))
                            .await
                            .unwrap_or_else(|e| Err(stalled(e))),
                        Err(e) => Err(std::io::Error::other(format!("encoding response: {e}"))),
                    }
                }
            },
        };
        if let Err(e) = result {
            tracing::debug!(%peer, error = %e, "connection write failed; closing");
            return;
        }
        let outcome = done.outcome.unwrap_or(0);
        finish(&metrics, done, Outcome::Code(outcome));
        if rx.is_empty()
            && let Err(e) = tokio::time::timeout(idle, out.flush())
                .await
                .unwrap_or_else(|e| Err(stalled(e)))
        {
            tracing::debug!(%peer, error = %e, "connection flush failed");
            return;
        }
    }
    let _ = tokio::time::timeout(idle, out.flush()).await;
}

async fn write_frame(out: &mut BufWriter<OwnedWriteHalf>, body: &[u8]) -> std::io::Result<()> {
    out.write_all(&(body.len() as u32).to_be_bytes()).await?;
    out.write_all(body).await
}

/// Writes a Fetch answer: the encoded fields through the buffer, the records from the
/// segment files with `sendfile` (the buffer is flushed before each). If a file turns
/// out shorter than promised (truncated meanwhile), the frame cannot be completed and
/// the connection is closed by the error. Counts the records sent per topic.
async fn write_fetch(
    out: &mut BufWriter<OwnedWriteHalf>,
    fetch: FetchOut,
    correlation_id: i32,
    version: i16,
    done: &mut Done,
    metrics: &Metrics,
) -> std::io::Result<()> {
    done.outcome = Some(fetch_error(&fetch));
    let sent = crate::metrics::fetched_bytes(&fetch);
    write_fetch_frame(out, fetch, correlation_id, version).await?;
    for (topic, bytes) in sent {
        metrics.bytes_out(&topic, bytes);
    }
    Ok(())
}

async fn write_fetch_frame(
    out: &mut BufWriter<OwnedWriteHalf>,
    fetch: FetchOut,
    correlation_id: i32,
    version: i16,
) -> std::io::Result<()> {
    let encoded =
        encode_fetch_response(correlation_id, version, fetch.error_code, 0, &fetch.topics);
    out.write_all(&(encoded.len as u32).to_be_bytes()).await?;
    for part in encoded.parts {
        match part {
            FetchPart::Bytes(b) => out.write_all(&b).await?,
            FetchPart::Records(i) => {
                let slice = fetch.records[i]
                    .as_ref()
                    .ok_or_else(|| std::io::Error::other("records promised but not read"))?;
                out.flush().await?;
                sendfile_all(
                    out.get_ref().as_ref(),
                    &slice.file,
                    slice.position,
                    slice.len,
                )
                .await?;
            }
        }
    }
    Ok(())
}
