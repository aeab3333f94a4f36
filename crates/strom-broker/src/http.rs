//! The metrics and health endpoint: a deliberately small HTTP/1.1 responder (one request
//! per connection, `Connection: close`) for `GET /metrics`, `/healthz` and `/readyz`.
//! It is bound before the data directory is loaded, so an orchestrator sees the process
//! alive but not ready while a long recovery runs.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

use crate::broker::Broker;
use crate::metrics::exposition::CONTENT_TYPE;

/// Largest request head accepted (request line and headers); scrapers send ~200 bytes.
const MAX_HEAD: usize = 8 * 1024;
/// A client gets this long to send its request and read the answer.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Scrapes served at once; more wait for a turn (a scrape walks every partition).
const MAX_CONCURRENT: usize = 8;

/// The running endpoint. [`set_broker`](Self::set_broker) once the broker is open;
/// `server::run_with_metrics` marks it ready and stops it.
#[derive(Debug)]
pub struct MetricsServer {
    local_addr: SocketAddr,
    state: Arc<State>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

#[derive(Debug, Default)]
struct State {
    /// Set once the logs are loaded: until then `/metrics` has nothing to read.
    broker: OnceLock<Arc<Broker>>,
    /// True while the Kafka listener accepts and the broker is not shutting down.
    ready: AtomicBool,
}

/// An answer: status line, content type, body.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: &'static str,
    content_type: &'static str,
    body: String,
}

impl MetricsServer {
    /// Binds `addr` and starts serving (not ready, no broker yet).
    pub async fn bind(addr: SocketAddr) -> std::io::Result<MetricsServer> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let state = Arc::new(State::default());
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, state.clone(), stopped));
        tracing::info!(listen = %local_addr, "serving metrics and health over HTTP");
        Ok(MetricsServer {
            local_addr,
            state,
            stop,
            task,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The broker whose metrics `/metrics` shows, once it is open.
    pub fn set_broker(&self, broker: Arc<Broker>) {
        let _ = self.state.broker.set(broker);
    }

    /// Whether `/readyz` answers 200 (it also needs the broker).
    pub fn set_ready(&self, ready: bool) {
        self.state.ready.store(ready, Ordering::Release);
    }

    /// Stops accepting and waits for the accept loop to end (answers being written
    /// finish on their own).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn accept_loop(listener: TcpListener, state: Arc<State>, mut stopped: watch::Receiver<bool>) {
    let limit = Arc::new(Semaphore::new(MAX_CONCURRENT));
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stopped.wait_for(|s| *s) => return,
        };
        let (socket, peer) = match accepted {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "metrics accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let state = state.clone();
        let limit = limit.clone();
        tokio::spawn(async move {
            let Ok(_permit) = limit.acquire_owned().await else {
                return;
            };
            match tokio::time::timeout(IO_TIMEOUT, serve(socket, &state)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "metrics connection failed"),
                Err(_) => tracing::debug!(%peer, "metrics connection timed out"),
            }
        });
    }
}

async fn serve(mut socket: TcpStream, state: &Arc<State>) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let complete = loop {
        let n = socket.read(&mut buf).await?;
        if n == 0 {
            break false;
        }
        head.extend_from_slice(&buf[..n]);
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            break true;
        }
        if head.len() > MAX_HEAD {
            break false;
        }
    };
    let (answer, head_only) = if complete {
        match parse_request_line(&head) {
            Some((method, path)) => {
                let head_only = method == "HEAD";
                (route(state, method, path).await, head_only)
            }
            None => (text("400 Bad Request", "bad request line\n"), false),
        }
    } else if head.len() > MAX_HEAD {
        (
            text(
                "431 Request Header Fields Too Large",
                "request head too large\n",
            ),
            false,
        )
    } else {
        // The client went away before finishing its request.
        return Ok(());
    };
    let mut out = format!(
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        answer.status,
        answer.content_type,
        answer.body.len()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(answer.body.as_bytes());
    }
    socket.write_all(&out).await?;
    socket.shutdown().await
}

/// `GET /path?query HTTP/1.1` -> (`GET`, `/path`).
fn parse_request_line(head: &[u8]) -> Option<(&str, &str)> {
    let line_end = head.iter().position(|&b| b == b'\n')?;
    let line = std::str::from_utf8(&head[..line_end])
        .ok()?
        .trim_end_matches('\r');
    let mut parts = line.split(' ');
    let method = parts.next()?;
    let target = parts.next()?;
    let version = parts.next()?;
    if parts.next().is_some() || !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return None;
    }
    Some((method, target.split('?').next().unwrap_or(target)))
}

async fn route(state: &Arc<State>, method: &str, path: &str) -> Answer {
    if method != "GET" && method != "HEAD" {
        return text("405 Method Not Allowed", "only GET and HEAD\n");
    }
    match path {
        "/metrics" => match state.broker.get() {
            Some(broker) => {
                // A scrape reads every partition's offsets and the coordinator's groups:
                // blocking work, kept off the runtime's worker threads.
                let broker = broker.clone();
                match tokio::task::spawn_blocking(move || broker.render_metrics()).await {
                    Ok(body) => Answer {
                        status: "200 OK",
                        content_type: CONTENT_TYPE,
                        body,
                    },
                    Err(e) => text("500 Internal Server Error", &format!("{e}\n")),
                }
            }
            None => text(
                "503 Service Unavailable",
                "starting: the logs are being loaded\n",
            ),
        },
        path => health(state, path),
    }
}

/// `/healthz` and `/readyz` (and 404 for anything else).
fn health(state: &State, path: &str) -> Answer {
    match path {
        // The process runs and its runtime answers: that is all liveness can say.
        "/healthz" => text("200 OK", "ok\n"),
        "/readyz" => {
            if state.broker.get().is_none() {
                text(
                    "503 Service Unavailable",
                    "starting: the logs are being loaded\n",
                )
            } else if !state.broker.get().is_some_and(|b| b.is_ready()) {
                text(
                    "503 Service Unavailable",
                    "joining the cluster: registration or __consumer_offsets not committed yet (is a majority of nodes up?)\n",
                )
            } else if state.ready.load(Ordering::Acquire) {
                text("200 OK", "ready\n")
            } else {
                text(
                    "503 Service Unavailable",
                    "not accepting Kafka clients (starting or shutting down)\n",
                )
            }
        }
        _ => text(
            "404 Not Found",
            "not found; try /metrics, /healthz or /readyz\n",
        ),
    }
}

fn text(status: &'static str, body: &str) -> Answer {
    Answer {
        status,
        content_type: "text/plain; charset=utf-8",
        body: body.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines_are_parsed_strictly() {
        assert_eq!(
            parse_request_line(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some(("GET", "/metrics"))
        );
        assert_eq!(
            parse_request_line(b"GET /readyz?verbose=1 HTTP/1.0\r\n\r\n"),
            Some(("GET", "/readyz"))
        );
        assert_eq!(parse_request_line(b"GET /metrics\r\n\r\n"), None);
        assert_eq!(parse_request_line(b"GET metrics HTTP/1.1\r\n\r\n"), None);
        assert_eq!(parse_request_line(b"\xff\xfe / HTTP/1.1\r\n\r\n"), None);
    }

    async fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes())
            .await?;
        let mut answer = String::new();
        s.read_to_string(&mut answer).await?;
        let status = answer[9..12].parse().unwrap();
        let body = answer.split_once("\r\n\r\n").unwrap().1.to_string();
        Ok((status, body))
    }

    /// The whole life: not ready before the broker, ready while serving, gone after.
    #[tokio::test]
    async fn endpoint_follows_the_server_from_start_to_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let server = MetricsServer::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let addr = server.local_addr();
        assert_eq!(get(addr, "/healthz").await.unwrap().0, 200);
        assert_eq!(get(addr, "/readyz").await.unwrap().0, 503);
        assert_eq!(get(addr, "/metrics").await.unwrap().0, 503);

        let mut raw = crate::config::RawSettings::default();
        raw.set("data_dir", dir.path().display().to_string(), "test")
            .unwrap();
        let broker = Broker::open(raw.build().unwrap()).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let kafka = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let run = tokio::spawn(crate::server::run_with_metrics(
            broker,
            listener,
            Some(server),
            async {
                let _ = stopped.await;
            },
        ));
        let mut ready = false;
        for _ in 0..100 {
            if get(addr, "/readyz").await.unwrap().0 == 200 {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(ready, "ready once serving");
        let (status, body) = get(addr, "/metrics").await.unwrap();
        assert_eq!(status, 200);
        assert!(body.contains("# TYPE strom_requests_total counter\n"));
        assert!(body.contains("strom_partition_log_end_offset{topic=\"__consumer_offsets\""));
        let _client = TcpStream::connect(kafka).await.unwrap();
        let mut counted = false;
        for _ in 0..100 {
            let body = get(addr, "/metrics").await.unwrap().1;
            if body.contains("strom_connections_open 1\n") {
                counted = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(counted, "the client's connection is counted open");

        stop.send(()).unwrap();
        run.await.unwrap().unwrap();
        assert!(
            get(addr, "/healthz").await.is_err(),
            "stopped with the broker"
        );
    }

    #[test]
    fn readiness_needs_the_broker_and_the_listener() {
        let state = State::default();
        assert_eq!(health(&state, "/healthz").status, "200 OK");
        assert_eq!(health(&state, "/readyz").status, "503 Service Unavailable");
        state.ready.store(true, Ordering::Release);
        // Still no broker: the logs are loading.
        assert_eq!(health(&state, "/readyz").status, "503 Service Unavailable");
        assert_eq!(health(&state, "/nope").status, "404 Not Found");
    }
}
