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

/// Sequences sent to one broker before it is replaced by a fresh one.
const RESTART_EVERY: usize = 32;
/// Every this many sequences (and before a broker is replaced), the deep check: can it
/// still create a topic?
const DEEP_CHECK_EVERY: usize = 4;

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

    /// Runs `seq` on a fresh broker (deep check included); the finding if it is like
    /// `like`: same kind and, for deaths and panics, the same culprit api.
    pub fn reproduces(
        &mut self,
        seq: &Sequence,
        like: &Finding,
        limits: Limits,
    ) -> Option<Finding> {
        self.discard();
        let broker = self.broker().ok()?;
        let got = exec::run(broker, seq, limits, true);
        self.discard();
        got.filter(|f| {
            f.kind == like.kind && (!f.kind.culprit_is_exact() || f.api_key == like.api_key)
        })
    }
}

/// Drops requests from `seq` while the finding still reproduces on a fresh broker, within
/// `budget`. Returns the smallest sequence found and the finding it last reproduced.
pub fn minimise(
    session: &mut Session,
    seq: &Sequence,
    finding: &Finding,
    limits: Limits,
    budget: Duration,
) -> (Sequence, Finding) {
    shrink(seq, finding, Instant::now() + budget, |cand| {
        session.reproduces(cand, finding, limits)
    })
}

/// The minimiser proper, over any `reproduces` check: first the culprit alone, then
/// everything up to it, then chunks of half the sequence, quarters, ... down to single
/// requests (delta debugging, simplified); a chunk whose removal keeps the finding stays
/// removed.
pub fn shrink(
    seq: &Sequence,
    finding: &Finding,
    deadline: Instant,
    mut reproduces: impl FnMut(&Sequence) -> Option<Finding>,
) -> (Sequence, Finding) {
    let mut cur = seq.clone();
    let mut last = finding.clone();
    if let Some(step) = finding.step.filter(|&s| s < cur.steps.len()) {
        let alone = Sequence {
            seed: seq.seed,
            steps: vec![cur.steps[step].clone()],
        };
        if let Some(f) = reproduces(&alone) {
            return (alone, f);
        }
        let mut upto = cur.clone();
        upto.steps.truncate(step + 1);
        if upto.steps.len() < cur.steps.len()
            && let Some(f) = reproduces(&upto)
        {
            cur = upto;
            last = f;
        }
    }
    let mut chunk = cur.steps.len().div_ceil(2);
    while chunk >= 1 && cur.steps.len() > 1 && Instant::now() < deadline {
        let mut removed = false;
        let mut i = 0;
        while i < cur.steps.len() && cur.steps.len() > 1 && Instant::now() < deadline {
            let end = (i + chunk).min(cur.steps.len());
            let mut cand = cur.clone();
            cand.steps.drain(i..end);
            if cand.steps.is_empty() {
                i = end;
                continue;
            }
            match reproduces(&cand) {
                Some(f) => {
                    cur = cand;
                    last = f;
                    removed = true;
                }
                None => i = end,
            }
        }
        if !removed {
            chunk /= 2;
        }
    }
    (cur, last)
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
            session.discard();
            let broker = session.broker()?;
            match exec::run(broker, &seq, opts.limits, true) {
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

    // Time spent confirming and minimising findings is not fuzzing time: it counts
    // neither against the duration nor in a finding's time to find.
    let start = Instant::now();
    let mut recording = Duration::ZERO;
    let fuzzing = |recording: Duration| start.elapsed().saturating_sub(recording);
    let mut last_report = start;
    let mut history: Vec<Sequence> = Vec::new();
    let mut requests = 0u64;
    let mut i = 0u64;
    while fuzzing(recording) < opts.duration {
        let seed = sequence::iteration_seed(opts.seed, i);
        i += 1;
        let seq = sequence::generate(seed);
        requests += seq.steps.len() as u64;
        let broker = session.broker()?;
        history.push(seq.clone());
        let retire = history.len() >= RESTART_EVERY;
        let deep = retire || history.len().is_multiple_of(DEEP_CHECK_EVERY);
        let result = exec::run(broker, &seq, opts.limits, deep);
        if result.is_none() && retire {
            // A fresh broker now and then: state piling up (topics with thousands of
            // partitions) slows everything down, and a finding that needs more history
            // than this could not be reproduced anyway.
            session.discard();
            history.clear();
        }
        if last_report.elapsed() > Duration::from_secs(10) {
            last_report = Instant::now();
            let peak = session
                .broker()
                .map(|b| b.watch.peak_rss.load(std::sync::atomic::Ordering::Relaxed) >> 20)
                .unwrap_or(0);
            println!(
                "  {:>4}s: {i} sequences, {requests} requests, {} brokers started, broker peak RSS {peak} MiB",
                fuzzing(recording).as_secs(),
                session.restarts()
            );
        }
        let Some(finding) = result else { continue };
        let after = fuzzing(recording);
        let recording_from = Instant::now();
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
            seen.insert(sig);
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
            // Minimising may name the real culprit (memory growth is noticed late).
            seen.insert(rec.finding.signature());
            found.push(rec);
        }
        recording += recording_from.elapsed();
        if !opts.keep_going || !session.can_restart() {
            break;
        }
        session.discard();
        history.clear();
    }
    session.discard();
    println!(
        "strom-tcpfuzz: {i} sequences, {requests} requests in {:.0}s of fuzzing, {} findings",
        fuzzing(recording).as_secs_f64(),
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
    let mut tried = seq.steps.len();
    let mut culprit = finding.clone();
    let mut reproduced = false;
    if session.can_restart() {
        let mut candidates = vec![(seq.clone(), finding.clone())];
        if history.len() > 1 {
            // It may need state left by the earlier sequences sent to the same broker.
            let all = Sequence {
                seed,
                steps: history.iter().flat_map(|s| s.steps.clone()).collect(),
            };
            let offset = all.steps.len() - seq.steps.len();
            let f = Finding {
                step: finding.step.map(|s| s + offset),
                ..finding.clone()
            };
            candidates.push((all, f));
        }
        for (cand, f) in candidates {
            tried = cand.steps.len();
            if let Some(got) = session.reproduces(&cand, &f, opts.limits) {
                reproduced = true;
                (repro, culprit) = if opts.minimise_budget.is_zero() {
                    (cand, got)
                } else {
                    minimise(session, &cand, &got, opts.limits, opts.minimise_budget)
                };
                break;
            }
            repro = cand;
        }
    }
    let finding = culprit;
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
            if reproduced {
                "yes"
            } else if session.can_restart() {
                "NO (flaky, or needs more history)"
            } else {
                "not tried (attached broker)"
            },
            repro.steps.len(),
            tried
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
    for s in repro.steps.iter().take(12) {
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
    if repro.steps.len() > 12 {
        println!("    ... ({} more)", repro.steps.len() - 12);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::FindingKind;
    use crate::sequence::Step;

    fn seq(notes: &[&str]) -> Sequence {
        Sequence {
            seed: 1,
            steps: notes
                .iter()
                .map(|n| Step {
                    conn: 0,
                    api_key: 0,
                    bytes: vec![],
                    note: n.to_string(),
                })
                .collect(),
        }
    }

    fn finding(step: usize) -> Finding {
        Finding {
            kind: FindingKind::Wedged,
            step: Some(step),
            api_key: Some(0),
            detail: String::new(),
        }
    }

    fn notes(s: &Sequence) -> Vec<&str> {
        s.steps.iter().map(|s| s.note.as_str()).collect()
    }

    #[test]
    fn shrink_keeps_exactly_the_requests_the_finding_needs() {
        // The "bug" needs a create, then later a poison request, in that order.
        let all: Vec<String> = (0..40).map(|i| format!("r{i}")).collect();
        let mut names: Vec<&str> = all.iter().map(|s| s.as_str()).collect();
        names[7] = "create";
        names[31] = "poison";
        let s = seq(&names);
        let mut tries = 0;
        let (min, _) = shrink(
            &s,
            &finding(39),
            Instant::now() + Duration::from_secs(60),
            |c| {
                tries += 1;
                let n = notes(c);
                let create = n.iter().position(|x| *x == "create");
                let poison = n.iter().position(|x| *x == "poison");
                matches!((create, poison), (Some(a), Some(b)) if a < b).then(|| finding(0))
            },
        );
        assert_eq!(notes(&min), ["create", "poison"]);
        assert!(tries < 60, "{tries} tries");
    }

    #[test]
    fn shrink_tries_the_culprit_alone_first() {
        let s = seq(&["a", "b", "boom", "c"]);
        let mut tries = 0;
        let (min, _) = shrink(
            &s,
            &finding(2),
            Instant::now() + Duration::from_secs(60),
            |c| {
                tries += 1;
                notes(c).contains(&"boom").then(|| finding(0))
            },
        );
        assert_eq!(notes(&min), ["boom"]);
        assert_eq!(tries, 1);
    }

    /// The committed reproducers load, and each still holds the request that its name and
    /// first comment line blame.
    #[test]
    fn committed_regressions_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions");
        let mut files = regression_files(&dir).unwrap();
        assert!(files.len() >= 3, "{files:?}");
        files.extend(regression_files(&dir.join("pending")).unwrap());
        for path in files {
            let seq = Sequence::load(&path).unwrap();
            assert!(!seq.steps.is_empty(), "{}", path.display());
            let name = path.file_name().unwrap().to_string_lossy().to_lowercase();
            let culprit = seq.steps.last().unwrap().api_key;
            assert!(
                name.starts_with(&api_name(culprit).to_lowercase()),
                "{}: last request is {}",
                path.display(),
                api_name(culprit)
            );
        }
    }

    #[test]
    fn shrink_gives_back_the_input_when_nothing_smaller_reproduces() {
        let s = seq(&["a", "b", "c"]);
        let (min, _) = shrink(
            &s,
            &finding(2),
            Instant::now() + Duration::from_secs(60),
            |c| (c.steps.len() == 3).then(|| finding(2)),
        );
        assert_eq!(min, s);
    }
}
