//! `strom-tcpfuzz`: fuzz a real `strom serve` over TCP (`run`), send finding files again
//! (`replay`), or print the sequence a seed names (`show`). See docs/fuzzing.md.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use strom_tcpfuzz::broker::BrokerConfig;
use strom_tcpfuzz::exec::{self, Limits};
use strom_tcpfuzz::fuzz::{self, Options, Session};
use strom_tcpfuzz::message::api_name;
use strom_tcpfuzz::sequence::{self, Sequence};

#[derive(Parser, Debug)]
#[command(name = "strom-tcpfuzz", about = "Stateful TCP fuzzer for strom serve")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Replay the regressions, then fuzz for a bounded time. Exits 1 on any finding.
    Run(RunArgs),
    /// Send finding files to a fresh broker each. Exits 1 when any reproduces.
    Replay(ReplayArgs),
    /// Print the sequence a seed generates, as a replay file.
    Show {
        /// A sequence seed, as printed with a finding (0x... or decimal).
        seed: String,
    },
}

#[derive(Args, Debug)]
struct Common {
    /// The strom binary to start.
    #[arg(long, default_value = "target/release/strom")]
    strom: PathBuf,
    /// Resident memory of the broker above which it is killed and the request is a finding.
    #[arg(long, default_value_t = 1024)]
    rss_ceiling_mib: u64,
    /// How long to wait for one answer before dropping that connection.
    #[arg(long, default_value_t = 1000)]
    step_timeout_ms: u64,
    /// How long ApiVersions on a fresh connection may take before the broker is hung.
    #[arg(long, default_value_t = 5000)]
    hang_timeout_ms: u64,
    /// Data directories and broker logs go here.
    #[arg(long, default_value = "target/tcpfuzz")]
    work_dir: PathBuf,
    /// Fuzz a broker that is already running at this address instead of starting one
    /// (no restarts, so the run stops at the first finding).
    #[arg(long)]
    attach: Option<SocketAddr>,
    /// With --attach: the broker's pid, to watch its memory.
    #[arg(long, requires = "attach")]
    attach_pid: Option<u32>,
    /// An extra flag for `strom serve` (repeat for several: --serve-arg=--flush --serve-arg=os).
    #[arg(long, allow_hyphen_values = true)]
    serve_arg: Vec<String>,
}

#[derive(Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    common: Common,
    /// How long to fuzz after the regressions, in seconds.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Run seed (0x... or decimal); by default one from the clock, printed at the start.
    #[arg(long)]
    seed: Option<String>,
    /// Directory of regression files replayed first (its sub-directories are not).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/regressions"))]
    regressions: PathBuf,
    /// Do not replay the regressions.
    #[arg(long)]
    no_regressions: bool,
    /// Where finding files are written.
    #[arg(long, default_value = "target/tcpfuzz/findings")]
    out: PathBuf,
    /// Keep fuzzing after a new finding, on a fresh broker.
    #[arg(long)]
    keep_going: bool,
    /// Seconds allowed for minimising each finding (0: keep the whole sequence).
    #[arg(long, default_value_t = 120)]
    minimise_seconds: u64,
}

#[derive(Args, Debug)]
struct ReplayArgs {
    #[command(flatten)]
    common: Common,
    /// Finding or regression files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Minimise each file that reproduces and write `<file>.min`.
    #[arg(long)]
    minimise: bool,
}

fn parse_seed(s: &str) -> anyhow::Result<u64> {
    Ok(match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16)?,
        None => s.parse()?,
    })
}

impl Common {
    fn broker(&self) -> anyhow::Result<BrokerConfig> {
        std::fs::create_dir_all(&self.work_dir)?;
        let work_dir = self
            .work_dir
            .join(format!("run-{}", std::process::id()))
            .to_path_buf();
        std::fs::create_dir_all(&work_dir)?;
        Ok(BrokerConfig {
            binary: self.strom.clone(),
            work_dir,
            rss_ceiling: self.rss_ceiling_mib << 20,
            extra_args: self.serve_arg.clone(),
            attach: self.attach.map(|a| (a, self.attach_pid)),
        })
    }

    fn limits(&self) -> Limits {
        Limits {
            step_timeout: Duration::from_millis(self.step_timeout_ms),
            hang_timeout: Duration::from_millis(self.hang_timeout_ms),
        }
    }
}

fn run(args: RunArgs) -> anyhow::Result<bool> {
    let seed = match &args.seed {
        Some(s) => parse_seed(s)?,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos() as u64,
    };
    let opts = Options {
        broker: args.common.broker()?,
        limits: args.common.limits(),
        seed,
        duration: Duration::from_secs(args.seconds),
        regressions: (!args.no_regressions).then(|| args.regressions.clone()),
        out_dir: args.out.clone(),
        keep_going: args.keep_going,
        minimise_budget: Duration::from_secs(args.minimise_seconds),
    };
    let found = fuzz::run(&opts)?;
    for r in &found {
        println!(
            "finding {}: {} — seed {}, after {:.1}s, {} requests, reproduced: {}, file {}",
            r.finding.signature(),
            r.finding.detail,
            r.seed
                .map_or_else(|| "-".to_string(), |s| format!("{s:#018x}")),
            r.after.as_secs_f64(),
            r.requests,
            r.reproduced,
            r.path.display()
        );
    }
    let _ = std::fs::remove_dir_all(&opts.broker.work_dir);
    Ok(found.is_empty())
}

fn replay(args: ReplayArgs) -> anyhow::Result<bool> {
    let cfg = args.common.broker()?;
    let limits = args.common.limits();
    let mut session = Session::new(cfg.clone());
    let mut clean = true;
    for path in &args.files {
        let seq = Sequence::load(path)?;
        session.discard();
        let result = exec::run(session.broker()?, &seq, limits, true);
        match result {
            None => println!(
                "{}: no finding ({} requests)",
                path.display(),
                seq.steps.len()
            ),
            Some(f) => {
                clean = false;
                println!(
                    "{}: FINDING {} after request {} ({}): {}",
                    path.display(),
                    f.signature(),
                    f.step.map_or_else(|| "-".to_string(), |s| s.to_string()),
                    f.api_key.map_or_else(|| "-".to_string(), api_name),
                    f.detail
                );
                if args.minimise {
                    let (min, _) =
                        fuzz::minimise(&mut session, &seq, &f, limits, Duration::from_secs(300));
                    let out = path.with_extension("seq.min");
                    std::fs::write(
                        &out,
                        min.to_text(&[format!("minimised from {}: {}", path.display(), f.detail)]),
                    )?;
                    println!(
                        "  minimised to {} requests: {}",
                        min.steps.len(),
                        out.display()
                    );
                }
            }
        }
    }
    session.discard();
    let _ = std::fs::remove_dir_all(&cfg.work_dir);
    Ok(clean)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Run(args) => run(args),
        Cmd::Replay(args) => replay(args),
        Cmd::Show { seed } => parse_seed(&seed).map(|s| {
            print!("{}", sequence::generate(s).to_text(&[]));
            true
        }),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
