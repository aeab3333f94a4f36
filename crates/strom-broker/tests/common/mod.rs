//! For the server tests: a real broker serving on 127.0.0.1:0 over a temporary
//! directory, and raw Kafka requests over plain sockets (exact bytes, no client
//! library that would refuse to send what these tests send).

#![allow(dead_code)] // each test binary uses part of it

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use strom_broker::{Broker, RawSettings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A running server; stopped (gracefully) by [`Server::stop`].
pub(crate) struct Server {
    pub addr: SocketAddr,
    pub broker: std::sync::Arc<Broker>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    run: tokio::task::JoinHandle<Result<(), strom_broker::errors::Failure>>,
    _dir: tempfile::TempDir,
}

/// Starts a broker with `settings` (file keys) over the defaults.
pub(crate) async fn start(settings: &[(&str, &str)]) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut raw = RawSettings::default();
    raw.set("data_dir", dir.path().display().to_string(), "test")
        .unwrap();
    for (k, v) in settings {
        raw.set(k, *v, "test").unwrap();
    }
    let config = raw.build().unwrap();
    let broker = tokio::task::spawn_blocking(move || Broker::open(config).unwrap())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(strom_broker::run(broker.clone(), listener, async {
        let _ = stopped.await;
    }));
    Server {
        addr,
        broker,
        stop: Some(stop),
        run,
        _dir: dir,
    }
}

impl Server {
    pub(crate) async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.run.await.unwrap().unwrap();
    }
}

/// A request frame: length prefix, header, body.
pub(crate) fn frame<R: Encodable>(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &R,
) -> Bytes {
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("t")));
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    header
        .encode(&mut buf, api.request_header_version(version))
        .unwrap();
    body.encode(&mut buf, version).unwrap();
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    buf.freeze()
}

/// Reads one response frame; returns its body after the header.
pub(crate) async fn read_response(s: &mut TcpStream, api: ApiKey, version: i16) -> Bytes {
    let len = s.read_i32().await.unwrap();
    let mut buf = vec![0; len as usize];
    s.read_exact(&mut buf).await.unwrap();
    let mut buf = Bytes::from(buf);
    ResponseHeader::decode(&mut buf, api.response_header_version(version)).unwrap();
    buf
}

/// Sends one request and decodes its answer.
pub(crate) async fn call<Req: Encodable, Resp: Decodable>(
    s: &mut TcpStream,
    api: ApiKey,
    version: i16,
    body: &Req,
) -> Resp {
    s.write_all(&frame(api, version, 1, body)).await.unwrap();
    let mut b = read_response(s, api, version).await;
    let r = Resp::decode(&mut b, version).unwrap();
    assert_eq!(b.remaining(), 0);
    r
}

/// The broker still answers a new client.
pub(crate) async fn answers(addr: SocketAddr) -> bool {
    let attempt = async {
        let mut s = TcpStream::connect(addr).await.ok()?;
        let r: ApiVersionsResponse = call(
            &mut s,
            ApiKey::ApiVersions,
            0,
            &ApiVersionsRequest::default(),
        )
        .await;
        Some(r.error_code == 0)
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(5), attempt).await,
        Ok(Some(true))
    )
}

/// Whether the server closes `s` within `within` (data it sends meanwhile is discarded).
pub(crate) async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let wait = async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(within, wait).await.is_ok()
}
