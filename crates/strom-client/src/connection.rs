//! One TCP connection to one broker: requests are framed with their own correlation ids
//! and may be pipelined (many in flight at once); a reader task hands each response to
//! the request that waits for it, whatever order they come back in.
//!
//! On connect the connection asks the broker for its ApiVersions, and every request is
//! then sent at the highest version both the broker and kafka-protocol know.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::oneshot;

use crate::error::ClientError;

/// The largest response accepted: a Fetch answer is bounded by the request's max_bytes,
/// so anything far beyond is a broken stream.
const MAX_RESPONSE_SIZE: usize = 512 * 1024 * 1024;

type Waiter = oneshot::Sender<Result<Bytes, ClientError>>;

/// Requests sent and not yet answered, by correlation id.
#[derive(Default)]
struct Pending {
    waiters: HashMap<i32, Waiter>,
    /// Set once the reader stopped: why, so later requests fail at once.
    closed: Option<String>,
}

/// A connection to one broker, shared by every task that talks to it.
#[derive(Debug)]
pub struct Connection {
    /// `host:port`, for error messages.
    addr: String,
    /// Sent in every request header; brokers log it.
    client_id: StrBytes,
    /// Writes are serialized so that frames never interleave; responses are not waited
    /// for under this lock, which is what allows pipelining.
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    pending: Arc<Mutex<Pending>>,
    next_correlation_id: AtomicI32,
    /// The broker's advertised (min, max) version per api key.
    broker_versions: HashMap<i16, (i16, i16)>,
    /// How long one request may wait for its answer.
    request_timeout: Duration,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("in_flight", &self.waiters.len())
            .field("closed", &self.closed)
            .finish()
    }
}

impl Connection {
    /// Connects to `addr`, starts the reader and negotiates versions with ApiVersions.
    pub async fn connect(
        addr: &str,
        client_id: &str,
        connect_timeout: Duration,
        request_timeout: Duration,
    ) -> Result<Connection, ClientError> {
        let connect_err = |cause| ClientError::Connect {
            addr: addr.to_owned(),
            cause,
        };
        let stream = tokio::time::timeout(connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| {
                connect_err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no connection within {connect_timeout:?}"),
                ))
            })?
            .map_err(connect_err)?;
        stream.set_nodelay(true).map_err(connect_err)?;
        let (read, write) = stream.into_split();
        let pending = Arc::new(Mutex::new(Pending::default()));
        tokio::spawn(read_responses(read, addr.to_owned(), pending.clone()));
        let mut conn = Connection {
            addr: addr.to_owned(),
            client_id: StrBytes::from_string(client_id.to_owned()),
            writer: tokio::sync::Mutex::new(write),
            pending,
            next_correlation_id: AtomicI32::new(1),
            broker_versions: HashMap::new(),
            request_timeout,
        };
        conn.broker_versions = conn.negotiate().await?;
        Ok(conn)
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Whether the connection broke (the reader stopped).
    pub fn is_closed(&self) -> bool {
        self.pending.lock().unwrap().closed.is_some()
    }

    /// The version to send `R` at: the highest both the broker and kafka-protocol know.
    pub fn version<R: Request>(&self) -> Result<i16, ClientError> {
        let key = ApiKey::try_from(R::KEY)
            .map_err(|_| ClientError::Protocol(format!("api key {}", R::KEY)))?;
        let name = api_name(key);
        let Some(&(bmin, bmax)) = self.broker_versions.get(&R::KEY) else {
            return Err(ClientError::UnsupportedApi {
                api: name,
                broker_min: -1,
                broker_max: -1,
            });
        };
        let v = bmax.min(R::VERSIONS.max);
        if v < bmin.max(R::VERSIONS.min) {
            return Err(ClientError::UnsupportedApi {
                api: name,
                broker_min: bmin,
                broker_max: bmax,
            });
        }
        Ok(v)
    }

    /// Sends `req` at `version` and waits for its response.
    pub async fn send<R: Request>(
        &self,
        req: &R,
        version: i16,
    ) -> Result<R::Response, ClientError> {
        let rx = self.submit(req, version, true).await?;
        let rx = rx.expect("a waiter was registered");
        let mut body = match tokio::time::timeout(self.request_timeout, rx).await {
            Ok(Ok(r)) => r?,
            Ok(Err(_)) => return Err(self.disconnected("the reader stopped")),
            Err(_) => {
                return Err(ClientError::Timeout(
                    self.request_timeout,
                    format!("waiting for {} from {}", api_name_of(R::KEY), self.addr),
                ));
            }
        };
        let header_version = strom_wire::response_header_version(
            ApiKey::try_from(R::KEY).unwrap_or(ApiKey::ApiVersions),
            version,
        );
        ResponseHeader::decode(&mut body, header_version)
            .and_then(|_| R::Response::decode(&mut body, version))
            .map_err(|e| {
                ClientError::Protocol(format!(
                    "cannot decode {} v{version} response from {}: {e}",
                    api_name_of(R::KEY),
                    self.addr
                ))
            })
    }

    /// Sends `req` at `version` without waiting for an answer (Produce with acks=0, which
    /// the broker never answers). Returns once the bytes are written.
    pub async fn send_no_response<R: Request>(
        &self,
        req: &R,
        version: i16,
    ) -> Result<(), ClientError> {
        self.submit(req, version, false).await.map(|_| ())
    }

    /// Encodes and writes one request; registers a waiter first when an answer is
    /// expected, so that the reader never sees an answer nobody waits for.
    async fn submit<R: Request>(
        &self,
        req: &R,
        version: i16,
        expect_response: bool,
    ) -> Result<Option<oneshot::Receiver<Result<Bytes, ClientError>>>, ClientError> {
        let correlation_id = self.next_correlation_id.fetch_add(1, Ordering::Relaxed);
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(self.client_id.clone()));
        let mut frame = BytesMut::with_capacity(64);
        frame.put_i32(0);
        strom_wire::encode_request_header(&mut frame, &header, R::header_version(version))?;
        req.encode(&mut frame, version).map_err(|e| {
            ClientError::Protocol(format!(
                "cannot encode {} v{version}: {e}",
                api_name_of(R::KEY)
            ))
        })?;
        let len = (frame.len() - 4) as i32;
        frame[..4].copy_from_slice(&len.to_be_bytes());

        let rx = if expect_response {
            let (tx, rx) = oneshot::channel();
            let mut pending = self.pending.lock().unwrap();
            if let Some(reason) = &pending.closed {
                return Err(self.disconnected(reason));
            }
            pending.waiters.insert(correlation_id, tx);
            Some(rx)
        } else {
            if let Some(reason) = &self.pending.lock().unwrap().closed {
                return Err(self.disconnected(reason));
            }
            None
        };
        let mut writer = self.writer.lock().await;
        if let Err(e) = writer.write_all(&frame).await {
            drop(writer);
            self.pending.lock().unwrap().waiters.remove(&correlation_id);
            return Err(self.disconnected(&e.to_string()));
        }
        Ok(rx)
    }

    fn disconnected(&self, reason: &str) -> ClientError {
        ClientError::Disconnected {
            addr: self.addr.clone(),
            reason: reason.to_owned(),
        }
    }

    /// ApiVersions at v3 (with the client's name), or v0 when the broker refuses v3 and
    /// answers in the v0 format with UNSUPPORTED_VERSION.
    async fn negotiate(&self) -> Result<HashMap<i16, (i16, i16)>, ClientError> {
        let req = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("strom"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let resp: ApiVersionsResponse = match self.send(&req, 3).await {
            Ok(r) if r.error_code == 0 => r,
            Ok(_) | Err(ClientError::Protocol(_)) => {
                self.send(&ApiVersionsRequest::default(), 0).await?
            }
            Err(e) => return Err(e),
        };
        ClientError::check(resp.error_code, None, || {
            format!("ApiVersions from {}", self.addr)
        })?;
        Ok(resp
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect())
    }
}

/// Reads exactly `len` bytes.
async fn read_frame(read: &mut BufReader<OwnedReadHalf>, len: usize) -> std::io::Result<Bytes> {
    let mut frame = BytesMut::with_capacity(len);
    while frame.len() < len {
        let want = len - frame.len();
        if read.read_buf(&mut (&mut frame).limit(want)).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
    Ok(frame.freeze())
}

/// Reads response frames until the socket closes, handing each to its waiter. When it
/// stops, every waiting request fails with the reason.
async fn read_responses(read: OwnedReadHalf, addr: String, pending: Arc<Mutex<Pending>>) {
    let mut read = BufReader::with_capacity(64 * 1024, read);
    let reason = loop {
        let len = match read.read_i32().await {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                break "closed by the broker".to_owned();
            }
            Err(e) => break e.to_string(),
        };
        if len < 4 || len as usize > MAX_RESPONSE_SIZE {
            break format!("invalid response frame length {len}");
        }
        // Read straight into uninitialized capacity: zeroing a 1 MiB fetch answer first
        // cost a tenth of a consumer's time.
        let frame = match read_frame(&mut read, len as usize).await {
            Ok(f) => f,
            Err(e) => break e.to_string(),
        };
        let correlation_id = (&frame[..4]).get_i32();
        let waiter = pending.lock().unwrap().waiters.remove(&correlation_id);
        match waiter {
            // The header (correlation id and, in v1, tagged fields) is decoded by the
            // waiter, which knows the version.
            Some(w) => {
                let _ = w.send(Ok(frame));
            }
            None => break format!("answer with unknown correlation id {correlation_id}"),
        }
    };
    tracing::debug!(%addr, %reason, "connection reader stopped");
    let mut p = pending.lock().unwrap();
    p.closed = Some(reason.clone());
    for (_, w) in p.waiters.drain() {
        let _ = w.send(Err(ClientError::Disconnected {
            addr: addr.clone(),
            reason: reason.clone(),
        }));
    }
}

fn api_name(key: ApiKey) -> &'static str {
    // ApiKey's Debug names are the protocol's api names.
    macro_rules! names {
        ($($k:ident),*) => {
            match key { $(ApiKey::$k => stringify!($k),)* _ => "api" }
        };
    }
    names!(
        Produce,
        Fetch,
        ListOffsets,
        Metadata,
        OffsetCommit,
        OffsetFetch,
        FindCoordinator,
        JoinGroup,
        Heartbeat,
        LeaveGroup,
        SyncGroup,
        DescribeGroups,
        ListGroups,
        ApiVersions,
        CreateTopics,
        DeleteTopics,
        DescribeConfigs,
        IncrementalAlterConfigs,
        DeleteGroups,
        DescribeCluster
    )
}

fn api_name_of(key: i16) -> &'static str {
    ApiKey::try_from(key).map(api_name).unwrap_or("api")
}
