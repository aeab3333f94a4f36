//! Sending a sequence to the broker and judging what happened. After every request the
//! broker must still be alive, below its memory ceiling and without a panic in its output;
//! after the sequence it must answer ApiVersions on a fresh connection within the hang
//! timeout. Anything else is a [`Finding`].

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::broker::{Broker, api_versions_probe, create_topic_probe};
use crate::message::api_name;
use crate::sequence::Sequence;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FindingKind {
    /// The process exited or was killed by a signal it raised (abort, segfault).
    Died,
    /// Its resident memory crossed the ceiling (we killed it).
    Memory,
    /// A panic or allocation-failure line in its output while it kept running.
    Panic,
    /// No answer to ApiVersions on a fresh connection within the hang timeout.
    Hang,
    /// Alive and answering, but a one-partition topic cannot be created within the hang
    /// timeout: something (the metadata Raft group) is stuck.
    Wedged,
}

impl FindingKind {
    /// Whether reproducing it needs the same culprit api too. Deaths and panics happen
    /// while one request is handled; memory growth and stuck groups may only be noticed
    /// a few requests later, at a point that varies from run to run.
    pub fn culprit_is_exact(self) -> bool {
        matches!(self, FindingKind::Died | FindingKind::Panic)
    }
}

#[derive(Debug, Clone)]
pub struct Finding {
    pub kind: FindingKind,
    /// The step after which it was seen (the request that caused it, as far as the
    /// fuzzer can tell), or `None` when only the final health check saw it.
    pub step: Option<usize>,
    pub api_key: Option<i16>,
    pub detail: String,
}

impl Finding {
    /// What two findings must share to count as the same bug: the kind, and for deaths
    /// and panics the culprit api (the others are noticed at a request that varies).
    pub fn signature(&self) -> String {
        if !self.kind.culprit_is_exact() {
            return format!("{:?}", self.kind).to_lowercase();
        }
        let api = self.api_key.map_or_else(|| "-".to_string(), api_name);
        format!("{:?}-{api}", self.kind).to_lowercase()
    }
}

/// Timeouts of one execution.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long to wait for one answer before giving up on that connection (requests
    /// with acks=0, or a huge max_wait_ms, are legitimately never or late answered).
    pub step_timeout: Duration,
    /// How long the ApiVersions probe may take before the broker counts as hung.
    pub hang_timeout: Duration,
}

/// The largest answer read whole; bigger ones are read and thrown away in pieces.
const READ_CHUNK: usize = 1 << 20;

/// Sends `seq` and returns the first finding, if any. With `deep`, the broker must also
/// still be able to create a topic at the end (see [`FindingKind::Wedged`]).
pub fn run(broker: &mut Broker, seq: &Sequence, limits: Limits, deep: bool) -> Option<Finding> {
    let mut conns: Vec<Option<TcpStream>> = Vec::new();
    // The last request that was not answered in time (rather than refused with a closed
    // connection): the broker may still be working on it.
    let mut slow: Option<usize> = None;
    for (i, step) in seq.steps.iter().enumerate() {
        let c = step.conn as usize;
        if conns.len() <= c {
            conns.resize_with(c + 1, || None);
        }
        if conns[c].is_none() {
            conns[c] = TcpStream::connect_timeout(&broker.addr, limits.hang_timeout)
                .ok()
                .inspect(|s| {
                    let _ = s.set_read_timeout(Some(limits.step_timeout));
                    let _ = s.set_write_timeout(Some(limits.hang_timeout));
                    let _ = s.set_nodelay(true);
                });
        }
        let t0 = std::time::Instant::now();
        let answered = match conns[c].as_mut() {
            Some(s) => send_and_read(s, &step.bytes),
            None => Answer::Failed,
        };
        if answered == Answer::TimedOut {
            slow = Some(i);
        }
        let answered = answered == Answer::Answered;
        // STROM_TCPFUZZ_TRACE=1: one line per request, to see where a run spends its time.
        if std::env::var_os("STROM_TCPFUZZ_TRACE").is_some() {
            eprintln!(
                "step {i} {} answered={answered} {:?} {}",
                api_name(step.api_key),
                t0.elapsed(),
                step.note
            );
        }
        if !answered {
            // Closed by the broker (a refused request), timed out, or never connected:
            // the next request on this connection gets a new one.
            conns[c] = None;
        }
        // A dying broker's sockets close as it exits; its exit status is visible a moment
        // later. (The health check after the sequence waits longer, in case this misses.)
        let grace = if answered {
            Duration::ZERO
        } else {
            Duration::from_millis(30)
        };
        if let Some(f) = check(broker, grace) {
            return Some(Finding {
                step: Some(i),
                api_key: Some(step.api_key),
                ..f
            });
        }
    }
    drop(conns);
    if let Some(i) = slow
        && let Some(f) = settle(broker, limits.hang_timeout)
    {
        return Some(Finding {
            step: Some(i),
            api_key: Some(seq.steps[i].api_key),
            ..f
        });
    }
    if let Err(e) = api_versions_probe(broker.addr, limits.hang_timeout) {
        let f = check(broker, Duration::from_millis(500)).unwrap_or(Finding {
            kind: FindingKind::Hang,
            step: None,
            api_key: None,
            detail: format!(
                "no ApiVersions answer on a fresh connection within {:?}: {e}",
                limits.hang_timeout
            ),
        });
        return Some(blame_last(seq, f));
    }
    if deep {
        broker.probes += 1;
        let name = format!("tcpfuzz-probe-{}", broker.probes);
        if let Err(e) = create_topic_probe(broker.addr, &name, limits.hang_timeout) {
            let f = check(broker, Duration::from_millis(500)).unwrap_or(Finding {
                kind: FindingKind::Wedged,
                step: None,
                api_key: None,
                detail: format!(
                    "cannot create a one-partition topic within {:?}: {e}",
                    limits.hang_timeout
                ),
            });
            return Some(blame_last(seq, f));
        }
    }
    None
}

/// A finding seen only after the sequence: blamed on its last request.
fn blame_last(seq: &Sequence, f: Finding) -> Finding {
    let last = seq.steps.len().checked_sub(1);
    Finding {
        step: f.step.or(last),
        api_key: f.api_key.or(last.map(|l| seq.steps[l].api_key)),
        ..f
    }
}

/// Waits, up to `limit`, while the broker's peak memory still grows (a request it did not
/// answer in time may still be allocating), and returns what the watchers see then. Without
/// this, whether a request that takes the broker past its ceiling after a few seconds is a
/// finding would depend on what the sequence sends next.
fn settle(broker: &mut Broker, limit: Duration) -> Option<Finding> {
    let start = std::time::Instant::now();
    let mut peak = broker.watch.peak_rss.load(Ordering::Relaxed);
    let mut grew = start;
    while start.elapsed() < limit && grew.elapsed() < Duration::from_millis(500) {
        std::thread::sleep(Duration::from_millis(50));
        if let Some(f) = check(broker, Duration::ZERO) {
            return Some(f);
        }
        let now = broker.watch.peak_rss.load(Ordering::Relaxed);
        if now > peak + (1 << 20) {
            peak = now;
            grew = std::time::Instant::now();
        }
    }
    check(broker, Duration::ZERO)
}

/// The watchers' verdict on the broker right now.
pub fn check(broker: &mut Broker, grace: Duration) -> Option<Finding> {
    let exited = broker.exited_within(grace);
    let watch = broker.watch.clone();
    let breach = watch.rss_breach.load(Ordering::Relaxed);
    let panic = watch.panic_line.lock().unwrap().clone();
    let (kind, detail) = if breach > 0 {
        (
            FindingKind::Memory,
            format!("resident memory reached {} MiB (killed)", breach >> 20),
        )
    } else if let Some(how) = exited {
        let why = panic.map(|p| format!(": {p}")).unwrap_or_default();
        (FindingKind::Died, format!("broker {how}{why}"))
    } else if let Some(p) = panic {
        (FindingKind::Panic, p)
    } else {
        return None;
    };
    Some(Finding {
        kind,
        step: None,
        api_key: None,
        detail,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Answered,
    /// No answer within the step timeout.
    TimedOut,
    /// Connection refused, closed or broken.
    Failed,
}

/// Writes one frame and reads one answer frame.
fn send_and_read(s: &mut TcpStream, body: &[u8]) -> Answer {
    let failed = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => Answer::TimedOut,
        _ => Answer::Failed,
    };
    let mut frame = Vec::with_capacity(body.len() + 4);
    frame.extend_from_slice(&(body.len() as i32).to_be_bytes());
    frame.extend_from_slice(body);
    if let Err(e) = s.write_all(&frame) {
        return failed(e);
    }
    let mut len = [0u8; 4];
    if let Err(e) = s.read_exact(&mut len) {
        return failed(e);
    }
    let mut left = i32::from_be_bytes(len).max(0) as usize;
    let mut buf = vec![0u8; left.min(READ_CHUNK)];
    while left > 0 {
        let n = left.min(buf.len());
        if let Err(e) = s.read_exact(&mut buf[..n]) {
            return failed(e);
        }
        left -= n;
    }
    Answer::Answered
}
