//! The broker under test: a real `strom serve` started on a free port with a fresh data
//! directory (or one already running that we attach to), and the watchers that turn its
//! misbehaviour into findings: its resident memory against a ceiling (sampled from
//! /proc/<pid>/status by a thread, which kills the broker on a breach to protect the
//! machine), its death, and panic or allocation-failure lines in its output.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How to start brokers.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// The `strom` binary.
    pub binary: PathBuf,
    /// Where data directories and broker logs go.
    pub work_dir: PathBuf,
    /// Resident memory above which the broker is killed and the step is a finding.
    pub rss_ceiling: u64,
    /// Extra flags for `strom serve`.
    pub extra_args: Vec<String>,
    /// An already running broker instead of one we start: its address and, to watch its
    /// memory and life, its pid.
    pub attach: Option<(SocketAddr, Option<u32>)>,
}

/// What the watchers saw.
#[derive(Debug, Default)]
pub struct Watch {
    /// Peak RSS (VmHWM) when it crossed the ceiling; 0 while it has not.
    pub rss_breach: AtomicU64,
    pub peak_rss: AtomicU64,
    /// The first line of output that says the process panicked or failed to allocate.
    pub panic_line: Mutex<Option<String>>,
    /// The last lines of output, for reports.
    pub tail: Mutex<VecDeque<String>>,
    stop: AtomicBool,
}

impl Watch {
    pub fn tail_text(&self, lines: usize) -> String {
        let tail = self.tail.lock().unwrap();
        let skip = tail.len().saturating_sub(lines);
        tail.iter()
            .skip(skip)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[derive(Debug)]
pub struct Broker {
    pub addr: SocketAddr,
    pub pid: Option<u32>,
    child: Option<Child>,
    data_dir: Option<PathBuf>,
    pub log_path: Option<PathBuf>,
    pub watch: Arc<Watch>,
    /// Topics created by the deep probe so far (names them).
    pub probes: u32,
}

/// Output lines that mean the process is going down for a reason worth reporting.
fn is_fatal_line(line: &str) -> bool {
    line.contains("panicked at") || line.contains("memory allocation of")
}

impl Broker {
    /// Starts `strom serve` (or attaches) and waits until it answers ApiVersions.
    #[allow(unsafe_code)] // audited: see the SAFETY notes below
    pub fn start(cfg: &BrokerConfig, n: u32) -> anyhow::Result<Broker> {
        let watch = Arc::new(Watch::default());
        if let Some((addr, pid)) = cfg.attach {
            if let Some(pid) = pid {
                spawn_rss_sampler(pid, cfg.rss_ceiling, watch.clone(), false);
            }
            let b = Broker {
                addr,
                pid,
                child: None,
                data_dir: None,
                log_path: None,
                watch,
                probes: 0,
            };
            b.wait_ready(Duration::from_secs(30))?;
            return Ok(b);
        }
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let data_dir = cfg.work_dir.join(format!("broker-{n}"));
        let _ = std::fs::remove_dir_all(&data_dir);
        std::fs::create_dir_all(&data_dir)?;
        let log_path = cfg.work_dir.join(format!("broker-{n}.log"));
        let mut cmd = Command::new(&cfg.binary);
        // SAFETY: prctl(2) is async-signal-safe; it only sets a flag of the new process.
        // The broker is killed when the fuzzer dies (a CI timeout, ^C), never left behind.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd
            .arg("serve")
            .args(["--node-id", "1", "--listen", &addr.to_string()])
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--metrics-listen", ""])
            // Joins are answered at once instead of after 3 s: more sequences per second.
            .args(["--group-initial-rebalance-delay-ms", "0"])
            .args(&cfg.extra_args)
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| anyhow::anyhow!("{}: {e}", cfg.binary.display()))?;
        let pid = child.id();
        let log = Arc::new(Mutex::new(std::fs::File::create(&log_path)?));
        spawn_output_reader(child.stdout.take().unwrap(), watch.clone(), log.clone());
        spawn_output_reader(child.stderr.take().unwrap(), watch.clone(), log);
        spawn_rss_sampler(pid, cfg.rss_ceiling, watch.clone(), true);
        let mut b = Broker {
            addr,
            pid: Some(pid),
            child: Some(child),
            data_dir: Some(data_dir),
            log_path: Some(log_path),
            watch,
            probes: 0,
        };
        if let Err(e) = b.wait_ready(Duration::from_secs(60)) {
            let tail = b.watch.tail_text(20);
            b.stop();
            anyhow::bail!("strom serve did not come up: {e}\n{tail}");
        }
        Ok(b)
    }

    fn wait_ready(&self, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        loop {
            match api_versions_probe(self.addr, Duration::from_secs(2)) {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() > deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// `Some(description)` when the process has exited (for an attached broker, only when
    /// its pid was given).
    pub fn exited(&mut self) -> Option<String> {
        let Some(child) = self.child.as_mut() else {
            // Attached: not our child, so no exit status; only whether it still exists.
            let pid = self.pid?;
            // Gone, or a zombie its parent has not reaped yet.
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok();
            let dead = state.is_none_or(|st| {
                st.rsplit_once(") ")
                    .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X'))
            });
            return dead.then(|| format!("process {pid} is gone"));
        };
        match child.try_wait() {
            Ok(Some(status)) => Some(describe_exit(status)),
            _ => None,
        }
    }

    /// Like [`Broker::exited`], but gives a dying process a moment to finish dying: a
    /// connection closed by an abort is seen before the exit status is.
    pub fn exited_within(&mut self, wait: Duration) -> Option<String> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(e) = self.exited() {
                return Some(e);
            }
            if Instant::now() >= deadline || self.pid.is_none() {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops the broker (SIGTERM, then SIGKILL after 3 s) and removes its data directory.
    #[allow(unsafe_code)] // audited: see the SAFETY notes below
    pub fn stop(&mut self) {
        self.watch.stop.store(true, Ordering::Relaxed);
        if let Some(mut child) = self.child.take() {
            if matches!(child.try_wait(), Ok(None)) {
                // SAFETY: kill(2) on the pid of a child we have not reaped yet.
                unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
                let deadline = Instant::now() + Duration::from_secs(3);
                while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
                let _ = child.kill();
            }
            let _ = child.wait();
        }
        if let Some(dir) = self.data_dir.take() {
            // A topic of 65,536 partitions leaves as many directories: removing them takes
            // minutes on a busy disk, so it happens beside the fuzzing, not before it.
            let trash = dir.with_extension("trash");
            if std::fs::rename(&dir, &trash).is_ok() {
                std::thread::spawn(move || std::fs::remove_dir_all(trash));
            } else {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (_, Some(sig)) => format!("killed by signal {sig}{}", signal_name(sig)),
        (Some(code), _) => format!("exited with status {code}"),
        _ => "exited".to_string(),
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGABRT => " (SIGABRT)",
        libc::SIGKILL => " (SIGKILL)",
        libc::SIGSEGV => " (SIGSEGV)",
        libc::SIGBUS => " (SIGBUS)",
        libc::SIGILL => " (SIGILL)",
        _ => "",
    }
}

fn spawn_output_reader(
    out: impl Read + Send + 'static,
    watch: Arc<Watch>,
    log: Arc<Mutex<std::fs::File>>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            let _ = writeln!(log.lock().unwrap(), "{line}");
            if is_fatal_line(&line) {
                watch.panic_line.lock().unwrap().get_or_insert(line.clone());
            }
            let mut tail = watch.tail.lock().unwrap();
            if tail.len() == 200 {
                tail.pop_front();
            }
            tail.push_back(line);
        }
    });
}

/// Reads VmHWM (peak resident set) every 5 ms: the peak, not the current value, so that a
/// spike between two samples is still seen. Kills the process on a breach when `kill`.
#[allow(unsafe_code)] // audited: see the SAFETY notes below
fn spawn_rss_sampler(pid: u32, ceiling: u64, watch: Arc<Watch>, kill: bool) {
    std::thread::spawn(move || {
        let path = format!("/proc/{pid}/status");
        while !watch.stop.load(Ordering::Relaxed) {
            let Some(hwm) = read_status_kib(Path::new(&path), "VmHWM:") else {
                break;
            };
            let bytes = hwm * 1024;
            watch.peak_rss.fetch_max(bytes, Ordering::Relaxed);
            if bytes > ceiling {
                watch.rss_breach.store(bytes, Ordering::Relaxed);
                if kill {
                    // SAFETY: kill(2); the broker is our child and not reaped while the
                    // sampler runs (stop() sets `stop` before reaping).
                    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    });
}

/// A `kB` value of /proc/<pid>/status.
pub fn read_status_kib(path: &Path, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Sends ApiVersions v0 on a fresh connection and waits for an answer: the liveness
/// check. A broker that accepts but does not answer within `timeout` is hung.
pub fn api_versions_probe(addr: SocketAddr, timeout: Duration) -> anyhow::Result<()> {
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    // length 10+len(client id); api 18, version 0, correlation 0x7ead, client id "probe".
    let mut frame = Vec::new();
    let body = [
        &18i16.to_be_bytes()[..],
        &0i16.to_be_bytes(),
        &0x7eadi32.to_be_bytes(),
        &5i16.to_be_bytes(),
        b"probe",
    ]
    .concat();
    frame.extend_from_slice(&(body.len() as i32).to_be_bytes());
    frame.extend_from_slice(&body);
    s.write_all(&frame)?;
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let mut corr = [0u8; 4];
    s.read_exact(&mut corr)?;
    anyhow::ensure!(i32::from_be_bytes(corr) == 0x7ead, "wrong correlation id");
    Ok(())
}

/// Creates a topic of one partition on a fresh connection and waits for success (or
/// TOPIC_ALREADY_EXISTS): the deeper liveness check. ApiVersions is answered by the
/// connection task alone; this one needs the metadata Raft group to commit, so it sees a
/// broker that still accepts requests but can no longer change anything.
pub fn create_topic_probe(addr: SocketAddr, name: &str, timeout: Duration) -> anyhow::Result<()> {
    use kafka_protocol::messages::create_topics_request::CreatableTopic;
    use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse, TopicName};
    use kafka_protocol::protocol::{Decodable, StrBytes};

    const VERSION: i16 = 5;
    let req = CreateTopicsRequest::default()
        .with_topics(vec![
            CreatableTopic::default()
                .with_name(TopicName(StrBytes::from_string(name.to_string())))
                .with_num_partitions(1)
                .with_replication_factor(1),
        ])
        .with_timeout_ms(timeout.as_millis() as i32);
    let msg = crate::message::encode(&req, VERSION, 0x7eae)?;
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout + Duration::from_secs(1)))?;
    s.set_write_timeout(Some(timeout))?;
    let mut frame = (msg.bytes.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&msg.bytes);
    s.write_all(&frame)?;
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let mut body = vec![0u8; i32::from_be_bytes(len).max(0) as usize];
    s.read_exact(&mut body)?;
    // Response header v1: correlation id, then an empty tagged-field section.
    anyhow::ensure!(body.len() > 5, "short CreateTopics answer");
    let resp = CreateTopicsResponse::decode(&mut bytes::Bytes::from(body).slice(5..), VERSION)?;
    let code = resp.topics.first().map_or(-1, |t| t.error_code);
    // 0: created; 36: TOPIC_ALREADY_EXISTS (a retried probe).
    anyhow::ensure!(
        code == 0 || code == 36,
        "CreateTopics answered error code {code}"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_peak_rss() {
        let kib = read_status_kib(Path::new("/proc/self/status"), "VmHWM:").unwrap();
        assert!(kib > 100, "{kib}");
        assert!(read_status_kib(Path::new("/proc/self/status"), "NoSuchKey:").is_none());
    }

    #[test]
    fn fatal_lines_are_recognised() {
        assert!(is_fatal_line(
            "memory allocation of 51539607552 bytes failed"
        ));
        assert!(is_fatal_line(
            "thread 'tokio-runtime-worker' panicked at crates/x.rs:1:2:"
        ));
        assert!(!is_fatal_line("INFO strom_broker: listening"));
    }
}
