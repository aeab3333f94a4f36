//! `strom bench baseline`: what this machine can do without Strom, measured the way
//! Strom's results are compared with it (issue 7's targets are ratios to these):
//!
//! - buffered write: sequential 1 MiB `write`s of `--size` bytes to a new file, no sync
//!   (the page cache's speed; what acks=1 is compared with);
//! - write + fdatasync per 1 MiB: the same, with an `fdatasync` after every MiB (what
//!   acks=all with fsync is compared with);
//! - loopback TCP: one stream over 127.0.0.1, 1 MiB `write`s, a reader thread `read`ing
//!   into a 1 MiB buffer;
//! - loopback sendfile: the file written above (in the page cache) sent with
//!   `sendfile` over one loopback stream to the same kind of reader (what a consumer
//!   replaying cached data is compared with: the broker serves fetches with sendfile).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use serde_json::json;

use super::args::parse_size;
use crate::cli::{Output, print_json};

const CHUNK: usize = 1 << 20;

#[derive(Debug, Clone, Args)]
pub(crate) struct BaselineArgs {
    /// Directory for the scratch file (on the disk the broker's data goes to)
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// Bytes written and sent per measurement
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    pub size: u64,
    /// Output format
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

/// Bytes per second of each measurement.
#[derive(Debug, Clone, Copy)]
struct Baselines {
    buffered_write: f64,
    write_fdatasync_per_mib: f64,
    loopback_tcp: f64,
    loopback_sendfile: f64,
}

pub(super) fn run(a: BaselineArgs) -> anyhow::Result<()> {
    let path = a
        .dir
        .join(format!("strom-baseline-{}.tmp", std::process::id()));
    let result = measure(&path, a.size);
    let _ = std::fs::remove_file(&path);
    let b = result?;
    let mb = |v: f64| v / 1e6;
    match a.output {
        Output::Json => print_json(&json!({
            "bytes": a.size,
            "buffered_write_mb_s": mb(b.buffered_write),
            "write_fdatasync_per_mib_mb_s": mb(b.write_fdatasync_per_mib),
            "loopback_tcp_mb_s": mb(b.loopback_tcp),
            "loopback_sendfile_mb_s": mb(b.loopback_sendfile),
        })),
        Output::Text => {
            println!(
                "buffered write                {:>9.1} MB/s",
                mb(b.buffered_write)
            );
            println!(
                "write + fdatasync per 1 MiB   {:>9.1} MB/s",
                mb(b.write_fdatasync_per_mib)
            );
            println!(
                "loopback TCP, one stream      {:>9.1} MB/s",
                mb(b.loopback_tcp)
            );
            println!(
                "loopback sendfile, one stream {:>9.1} MB/s",
                mb(b.loopback_sendfile)
            );
        }
    }
    Ok(())
}

fn measure(path: &Path, size: u64) -> anyhow::Result<Baselines> {
    let chunks = size.div_ceil(CHUNK as u64).max(1);
    let bytes = (chunks * CHUNK as u64) as f64;
    let per_sec = |secs: f64| bytes / secs.max(1e-9);
    let buf = vec![0x5Au8; CHUNK];

    // Write + fdatasync per MiB first, then the buffered write whose file stays for
    // sendfile (fully synced before the sendfile run, so no writeback runs under it).
    let synced = write_file(path, chunks, &buf, true)?;
    let _ = std::fs::remove_file(path);
    let buffered = write_file(path, chunks, &buf, false)?;
    File::open(path)?.sync_all()?;
    let tcp = loopback(bytes as u64, |s| {
        for _ in 0..chunks {
            s.write_all(&buf)?;
        }
        Ok(())
    })?;
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let sendfile = loopback(bytes as u64, |s| send_file(&file, s, bytes as u64))?;
    Ok(Baselines {
        buffered_write: per_sec(buffered),
        write_fdatasync_per_mib: per_sec(synced),
        loopback_tcp: per_sec(tcp),
        loopback_sendfile: per_sec(sendfile),
    })
}

/// Seconds to write `chunks` MiB to a new file at `path`, with an fdatasync after each
/// when `sync`.
fn write_file(path: &Path, chunks: u64, buf: &[u8], sync: bool) -> anyhow::Result<f64> {
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    let start = Instant::now();
    for _ in 0..chunks {
        f.write_all(buf)?;
        if sync {
            f.sync_data()?;
        }
    }
    Ok(start.elapsed().as_secs_f64())
}

/// Seconds for `send` to push `total` bytes over a loopback connection to a reader
/// thread, until the reader has them all.
fn loopback(
    total: u64,
    send: impl FnOnce(&mut TcpStream) -> std::io::Result<()>,
) -> anyhow::Result<f64> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let reader = std::thread::spawn(move || -> std::io::Result<u64> {
        let (mut s, _) = listener.accept()?;
        let mut buf = vec![0u8; CHUNK];
        let mut got = 0u64;
        while got < total {
            let n = s.read(&mut buf)?;
            if n == 0 {
                break;
            }
            got += n as u64;
        }
        Ok(got)
    });
    let mut s = TcpStream::connect(addr)?;
    let start = Instant::now();
    send(&mut s)?;
    let got = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the loopback reader panicked"))??;
    let secs = start.elapsed().as_secs_f64();
    anyhow::ensure!(got == total, "loopback reader got {got} of {total} bytes");
    Ok(secs)
}

/// Sends `len` bytes of `file` from its start with `sendfile(2)`.
#[allow(unsafe_code)] // audited: see the SAFETY notes below
fn send_file(file: &File, s: &mut TcpStream, len: u64) -> std::io::Result<()> {
    let mut offset: libc::off_t = 0;
    while (offset as u64) < len {
        let left = (len - offset as u64).min(1 << 30) as usize;
        // SAFETY: both descriptors are open for the duration of the call and `offset`
        // is a valid pointer to an off_t.
        let n = unsafe { libc::sendfile(s.as_raw_fd(), file.as_raw_fd(), &mut offset, left) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the file ended early",
            ));
        }
    }
    Ok(())
}
