//! Reads request frames off a client socket within bounds: the frame size limit, the
//! memory budget (taken before a frame's body is read, see `budget.rs`), the idle
//! timeout between requests and the read timeout for a frame that was started but does
//! not arrive whole.
//!
//! Small frames are read through a small look-ahead buffer and copied out, so a request
//! in flight never pins that buffer. A large frame gets a buffer of exactly its length
//! once its bytes are in the budget: no doubling growth and copying as bytes arrive (which
//! cost twice the frame at the moment of each copy), and pages of it become resident only
//! as bytes are written into them.

use std::io;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::budget::{ConnectionBudget, Lease};
use crate::registry::ConnState;

/// The look-ahead buffer: frames up to this size are read through it.
const HEAD_BYTES: usize = 16 * 1024;

/// Why reading stopped for good.
#[derive(Debug)]
pub(crate) enum ReadError {
    Io(io::Error),
    /// The client closed the connection inside a frame.
    Truncated,
    /// No request and nothing pending for `connections_max_idle_ms`.
    Idle(Duration),
    /// A frame started but did not arrive whole in time.
    Timeout(Duration),
    Negative(i32),
    TooLarge {
        size: usize,
        max: usize,
    },
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "read failed: {e}"),
            ReadError::Truncated => write!(f, "connection closed inside a frame"),
            ReadError::Idle(d) => write!(f, "idle for {} ms", d.as_millis()),
            ReadError::Timeout(d) => {
                write!(f, "request frame not complete after {} ms", d.as_millis())
            }
            ReadError::Negative(n) => write!(f, "negative frame length {n}"),
            ReadError::TooLarge { size, max } => {
                write!(f, "frame of {size} bytes is larger than the limit of {max}")
            }
        }
    }
}

/// A request frame (without its length prefix), with its bytes in the budget.
pub(crate) struct Frame {
    pub body: Bytes,
    pub lease: Lease,
}

pub(crate) struct FrameReader<R> {
    rd: R,
    head: BytesMut,
    max_frame: usize,
    idle: Duration,
    request_timeout: Duration,
    budget: ConnectionBudget,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub(crate) fn new(
        rd: R,
        max_frame: usize,
        idle: Duration,
        request_timeout: Duration,
        budget: ConnectionBudget,
    ) -> Self {
        FrameReader {
            rd,
            head: BytesMut::new(),
            max_frame,
            idle,
            request_timeout,
            budget,
        }
    }

    /// The connection's share of the budget.
    pub(crate) fn budget(&self) -> &ConnectionBudget {
        &self.budget
    }

    /// The next frame; `Ok(None)` when the client closed the connection between frames.
    /// `state` learns of the frame (pending from its length prefix on) and tells how long
    /// the connection has been idle.
    pub(crate) async fn next(&mut self, state: &ConnState) -> Result<Option<Frame>, ReadError> {
        if self.head.is_empty() && !self.wait_for_data(state).await? {
            return Ok(None);
        }
        let mut deadline = tokio::time::Instant::now() + self.request_timeout;
        while self.head.len() < 4 {
            self.read_head(deadline).await?;
        }
        let length = i32::from_be_bytes([self.head[0], self.head[1], self.head[2], self.head[3]]);
        if length < 0 {
            return Err(ReadError::Negative(length));
        }
        let len = length as usize;
        if len > self.max_frame {
            return Err(ReadError::TooLarge {
                size: len,
                max: self.max_frame,
            });
        }
        state.request_read();
        // Waiting here is back pressure: nothing more is read from this client until
        // the frame fits. The wait does not count against the client's read timeout.
        let waiting = Instant::now();
        let lease = self.budget.acquire(len).await;
        deadline += waiting.elapsed();
        let body = if len <= HEAD_BYTES {
            while self.head.len() < 4 + len {
                self.read_head(deadline).await?;
            }
            let body = Bytes::copy_from_slice(&self.head[4..4 + len]);
            self.head.advance(4 + len);
            body
        } else {
            let mut body = BytesMut::with_capacity(len);
            // The look-ahead holds less than the whole frame here, so all of it is ours.
            body.extend_from_slice(&self.head[4..]);
            self.head.clear();
            while body.len() < len {
                let want = len - body.len();
                let n = self
                    .read_until(deadline, ReadInto::Body(&mut body, want))
                    .await?;
                if n == 0 {
                    return Err(ReadError::Truncated);
                }
            }
            body.freeze()
        };
        Ok(Some(Frame { body, lease }))
    }

    /// Waits for the first byte of a frame; `false` on a clean close. Gives up when the
    /// connection has been idle (nothing pending, nothing read or written) long enough.
    async fn wait_for_data(&mut self, state: &ConnState) -> Result<bool, ReadError> {
        loop {
            let idle = state.idle_for();
            if idle >= self.idle {
                return Err(ReadError::Idle(idle));
            }
            let check = tokio::time::Instant::now() + (self.idle - idle);
            match self.read_until(check, ReadInto::Head).await {
                Ok(0) => return Ok(false),
                Ok(_) => return Ok(true),
                // Not idle after all if answers were pending or written meanwhile.
                Err(ReadError::Timeout(_)) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    async fn read_head(&mut self, deadline: tokio::time::Instant) -> Result<(), ReadError> {
        match self.read_until(deadline, ReadInto::Head).await? {
            0 => Err(ReadError::Truncated),
            _ => Ok(()),
        }
    }

    async fn read_until(
        &mut self,
        deadline: tokio::time::Instant,
        into: ReadInto<'_>,
    ) -> Result<usize, ReadError> {
        let read = async {
            match into {
                ReadInto::Head => {
                    if self.head.capacity() - self.head.len() < 1024 {
                        self.head.reserve(HEAD_BYTES);
                    }
                    let room = HEAD_BYTES.saturating_sub(self.head.len()).max(1024);
                    self.rd.read_buf(&mut (&mut self.head).limit(room)).await
                }
                ReadInto::Body(body, want) => self.rd.read_buf(&mut body.limit(want)).await,
            }
        };
        match tokio::time::timeout_at(deadline, read).await {
            Ok(r) => r.map_err(ReadError::Io),
            Err(_) => Err(ReadError::Timeout(self.request_timeout)),
        }
    }
}

enum ReadInto<'a> {
    Head,
    Body(&'a mut BytesMut, usize),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::Budget;
    use tokio::io::AsyncWriteExt;

    fn reader(
        rd: tokio::io::DuplexStream,
        budget: &Budget,
        idle_ms: u64,
        timeout_ms: u64,
    ) -> FrameReader<tokio::io::DuplexStream> {
        FrameReader::new(
            rd,
            1 << 20,
            Duration::from_millis(idle_ms),
            Duration::from_millis(timeout_ms),
            budget.connection(),
        )
    }

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut v = (body.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(body);
        v
    }

    #[tokio::test]
    async fn small_and_large_frames_in_one_stream() {
        let budget = Budget::new(4 << 20, 4 << 20);
        let state = crate::registry::Registry::new(10, []);
        let state = std::sync::Arc::new(state)
            .register("127.0.0.1".parse().unwrap())
            .unwrap();
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let mut r = reader(server, &budget, 10_000, 10_000);
        let big: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
        let wire = [frame(b"one"), frame(&big), frame(b""), frame(b"four")].concat();
        let send = tokio::spawn(async move {
            client.write_all(&wire).await.unwrap();
            client
        });
        let mut got = Vec::new();
        let mut leases = Vec::new();
        for _ in 0..4 {
            let f = r.next(&state.state).await.unwrap().unwrap();
            got.push(f.body);
            leases.push(f.lease);
        }
        assert_eq!(got[0], &b"one"[..]);
        assert_eq!(got[1], big);
        assert_eq!(got[2], &b""[..]);
        assert_eq!(got[3], &b"four"[..]);
        assert_eq!(budget.in_use(), 3 + 300_000 + 4);
        drop(leases);
        assert_eq!(budget.in_use(), 0);
        drop(send.await.unwrap());
        assert!(r.next(&state.state).await.unwrap().is_none(), "clean close");
    }

    #[tokio::test]
    async fn idle_and_partial_frames_time_out() {
        let budget = Budget::new(1 << 20, 1 << 20);
        let registry = std::sync::Arc::new(crate::registry::Registry::new(10, []));
        let conn = registry.register("127.0.0.1".parse().unwrap()).unwrap();
        let (_client, server) = tokio::io::duplex(1024);
        let mut r = reader(server, &budget, 50, 10_000);
        assert!(matches!(r.next(&conn.state).await, Err(ReadError::Idle(_))));

        let conn = registry.register("127.0.0.1".parse().unwrap()).unwrap();
        let (mut client, server) = tokio::io::duplex(1024);
        let mut r = reader(server, &budget, 10_000, 50);
        client.write_all(&[0, 0, 1, 0, 1, 2]).await.unwrap();
        assert!(matches!(
            r.next(&conn.state).await,
            Err(ReadError::Timeout(_))
        ));
        assert_eq!(budget.in_use(), 0, "a failed frame gives its bytes back");
    }

    #[tokio::test]
    async fn bad_lengths_are_refused_before_anything_is_taken() {
        let budget = Budget::new(1 << 20, 1 << 20);
        let registry = std::sync::Arc::new(crate::registry::Registry::new(10, []));
        let conn = registry.register("127.0.0.1".parse().unwrap()).unwrap();
        for (prefix, want_negative) in [(i32::MAX, false), (-1, true)] {
            let (mut client, server) = tokio::io::duplex(1024);
            let mut r = reader(server, &budget, 10_000, 10_000);
            client.write_all(&prefix.to_be_bytes()).await.unwrap();
            let e = r.next(&conn.state).await.err().unwrap();
            assert_eq!(matches!(e, ReadError::Negative(_)), want_negative, "{e}");
            assert_eq!(budget.in_use(), 0);
        }
    }
}
