//! The fuzzing session: replay the committed regressions, then generate, send and judge
//! sequences until the time is up; confirm each finding on a fresh broker, minimise it
//! (drop requests while it still reproduces) and write it as a replayable file.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::broker::{Broker, BrokerConfig};
use crate::exec::{self, Finding, Limits};
use crate::message::api_name;
use crate::sequence::{self, Sequence};

#[derive(Debug, Clone)]
pub struct Options {
    pub broker: BrokerConfig,
    pub limits: Limits,
    pub seed: u64,
    pub duration: Duration,
    /// Replayed before fuzzing; `None` skips them.
    pub regressions: Option<PathBuf>,
    pub out_dir: PathBuf,
    /// Go on after a new finding (on a fresh broker) instead of stopping at the first.
    pub keep_going: bool,
    /// Time allowed for minimising one finding; zero: do not minimise.
    pub minimise_budget: Duration,
}

/// One finding as reported at the end.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub finding: Finding,
    /// The file that replays it (for a regression: the regression file).
    pub path: PathBuf,
    /// Seed of the sequence that found it, and when (since the start of fuzzing).
    pub seed: Option<u64>,
    pub after: Duration,
    pub requests: usize,
    pub reproduced: bool,
}

/// Starts brokers as needed; the counter names their data directories.
#[derive(Debug)]
pub struct Session {
    cfg: BrokerConfig,
    started: u32,
    broker: Option<Broker>,
}

impl Session {
    pub fn new(cfg: BrokerConfig) -> Self {
        Session {
            cfg,
            started: 0,
            broker: None,
        }
    }

    pub fn broker(&mut self) -> anyhow::Result<&mut Broker> {
        if self.broker.is_none() {
            self.started += 1;
            self.broker = Some(Broker::start(&self.cfg, self.started)?);
        }
        Ok(self.broker.as_mut().unwrap())
    }

    /// Stops the current broker; the next [`Session::broker`] starts a fresh one.
    pub fn discard(&mut self) {
        if let Some(mut b) = self.broker.take() {
            b.stop();
        }
    }

    pub fn can_restart(&self) -> bool {
        self.cfg.attach.is_none()
    }

    pub fn restarts(&self) -> u32 {
        self.started
    }

    /// Runs `seq` on a fresh broker; the finding if it matches `like` (same kind, same
    /// culprit api).
    pub fn reproduces(
        &mut self,
        seq: &Sequence,
        like: &Finding,
        limits: Limits,
    ) -> Option<Finding> {
        self.discard();
        let broker = self.broker().ok()?;
        let got = exec::run(broker, seq, limits);
        self.discard();
        got.filter(|f| f.kind == like.kind && f.api_key == like.api_key)
    }
}

/// Drops requests from `seq` while the finding still reproduces, within `budget`: first
/// everything after the culprit, then the culprit alone, then one request at a time.
pub fn minimise(
    session: &mut Session,
    seq: &Sequence,
    finding: &Finding,
    limits: Limits,
    budget: Duration,
) -> Sequence {
    let deadline = Instant::now() + budget;
    let mut cur = seq.clone();
    if let Some(step) = finding.step {
        cur.steps.truncate(step + 1);
        let alone = Sequence {
            seed: seq.seed,
            steps: vec![cur.steps[step].clone()],
        };
        if session.reproduces(&alone, finding, limits).is_some() {
            return alone;
        }
    }
    let mut changed = true;
    while changed && Instant::now() < deadline {
        changed = false;
        let mut i = cur.steps.len();
        while i > 0 && cur.steps.len() > 1 && Instant::now() < deadline {
            i -= 1;
            let mut cand = cur.clone();
            cand.steps.remove(i);
            if session.reproduces(&cand, finding, limits).is_some() {
                cur = cand;
                changed = true;
            }
        }
    }
    cur
}

/// The whole run; returns every finding (an empty list is a clean run).
pub fn run(opts: &Options) -> anyhow::Result<Vec<Recorded>> {
    std::fs::create_dir_all(&opts.out_dir)?;
    let mut session = Session::new(opts.broker.clone());
    let mut found: Vec<Recorded> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    println!("strom-tcpfuzz: run seed {:#018x}", opts.seed);

    if let Some(dir) = &opts.regressions {
        for path in regression_files(dir)? {
            let seq = Sequence::load(&path)?;
            let broker = session.broker()?;
            match exec::run(broker, &seq, opts.limits) {
                None => println!("regression {}: ok", path.display()),
                Some(f) => {
                    println!(
                        "FINDING {} (regression {}): {}",
                        f.signature(),
                        path.display(),
                        f.detail
                    );
                    seen.insert(f.signature());
                    found.push(Recorded {
                        finding: f,
                        path: path.clone(),
                        seed: None,
                        after: Duration::ZERO,
                        requests: seq.steps.len(),
                        reproduced: true,
                    });
                    if !session.can_restart() {
                        return Ok(found);
                    }
                    session.discard();
                }
            }
        }
        if !found.is_empty() && !opts.keep_going {
            return Ok(found);
        }
    }

    let start = Instant::now();
    let mut last_report = start;
    let mut history: Vec<Sequence> = Vec::new();
    let mut requests = 0u64;
    let mut i = 0u64;
    while start.elapsed() < opts.duration {
        let seed = sequence::iteration_seed(opts.seed, i);
        i += 1;
        let seq = sequence::generate(seed);
        requests += seq.steps.len() as u64;
        let broker = session.broker()?;
        let result = exec::run(broker, &seq, opts.limits);
        history.push(seq.clone());
        if history.len() > 16 {
            history.remove(0);
        }
        if last_report.elapsed() > Duration::from_secs(10) {
            last_report = Instant::now();
            let peak = session
                .broker()
                .map(|b| b.watch.peak_rss.load(std::sync::atomic::Ordering::Relaxed) >> 20)
                .unwrap_or(0);
            println!(
                "  {:>4}s: {i} sequences, {requests} requests, {} brokers started, broker peak RSS {peak} MiB",
                start.elapsed().as_secs(),
                session.restarts()
            );
        }
        let Some(finding) = result else { continue };
        let after = start.elapsed();
        let tail = session
            .broker()
            .map(|b| b.watch.tail_text(8))
            .unwrap_or_default();
        let sig = finding.signature();
        println!(
            "FINDING {sig} seed={seed:#018x} iteration={} after {:.1}s: {}",
            i - 1,
            after.as_secs_f64(),
            finding.detail
        );
        if seen.contains(&sig) {
            println!("  (same signature as an earlier finding; not recorded again)");
        } else {
            seen.insert(sig.clone());
            let rec = record(
                &mut session,
                opts,
                finding,
                &seq,
                &history,
                seed,
                after,
                &tail,
            )?;
            found.push(rec);
        }
        if !opts.keep_going || !session.can_restart() {
            break;
        }
        session.discard();
        history.clear();
    }
    session.discard();
    println!(
        "strom-tcpfuzz: {i} sequences, {requests} requests in {:.0}s, {} findings",
        start.elapsed().as_secs_f64(),
        found.len()
    );
    Ok(found)
}

/// Confirms a finding on a fresh broker (alone, else with the sequences before it),
/// minimises it, and writes the file.
#[allow(clippy::too_many_arguments)]
fn record(
    session: &mut Session,
    opts: &Options,
    finding: Finding,
    seq: &Sequence,
    history: &[Sequence],
    seed: u64,
    after: Duration,
    tail: &str,
) -> anyhow::Result<Recorded> {
    let mut repro = seq.clone();
    let mut reproduced = false;
    if session.can_restart() {
        if session.reproduces(seq, &finding, opts.limits).is_some() {
            reproduced = true;
        } else {
            // It needed state left by earlier sequences on the same broker.
            let mut all = Sequence {
                seed,
                steps: history.iter().flat_map(|s| s.steps.clone()).collect(),
            };
            let offset = all.steps.len() - seq.steps.len();
            repro = all.clone();
            let f = Finding {
                step: finding.step.map(|s| s + offset),
                ..finding.clone()
            };
            if session.reproduces(&all, &f, opts.limits).is_some() {
                reproduced = true;
                if !opts.minimise_budget.is_zero() {
                    all = minimise(session, &all, &f, opts.limits, opts.minimise_budget);
                }
                repro = all;
            }
        }
        if reproduced && repro.steps.len() == seq.steps.len() && !opts.minimise_budget.is_zero() {
            repro = minimise(session, seq, &finding, opts.limits, opts.minimise_budget);
        }
    }
    let path = opts
        .out_dir
        .join(format!("{}-{seed:016x}.seq", finding.signature()));
    let mut comments = vec![
        format!("finding: {} ({})", finding.signature(), finding.detail),
        format!(
            "found after {:.1}s; culprit request: {}",
            after.as_secs_f64(),
            finding.api_key.map_or_else(|| "-".to_string(), api_name)
        ),
        format!(
            "reproduced on a fresh broker: {}; {} of {} requests kept",
            if reproduced { "yes" } else { "NO (flaky?)" },
            repro.steps.len(),
            seq.steps.len()
        ),
    ];
    if !tail.is_empty() {
        comments.push("broker output before it:".to_string());
        comments.extend(tail.lines().map(|l| format!("  {l}")));
    }
    std::fs::write(&path, repro.to_text(&comments))?;
    println!(
        "  reproducer: {} ({} requests, reproduced on a fresh broker: {reproduced})",
        path.display(),
        repro.steps.len()
    );
    for s in &repro.steps {
        println!(
            "    conn {} {} ({} bytes){}",
            s.conn,
            api_name(s.api_key),
            s.bytes.len(),
            if s.note.is_empty() {
                String::new()
            } else {
                format!(": {}", s.note)
            }
        );
    }
    Ok(Recorded {
        finding,
        path,
        seed: Some(seed),
        after,
        requests: repro.steps.len(),
        reproduced,
    })
}

/// The `*.seq` files directly in `dir` (not in sub-directories such as `pending/`), in
/// name order.
pub fn regression_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "seq"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(anyhow::anyhow!("{}: {e}", dir.display())),
    };
    files.sort();
    Ok(files)
}
