//! Every file operation whose failure or loss recovery must survive: writes, fsyncs of
//! files and directories, creates, renames, removals and truncations. In production
//! each is the plain system call. Two test aids hang off the same functions, both off
//! unless switched on (one relaxed atomic load per call otherwise):
//! - **faults**: rules that make matching operations fail with an errno (ENOSPC, EIO),
//!   set by tests through [`faults::inject`] or for a whole `strom serve` process through
//!   the `STROM_FAULTS` environment variable ([`faults::from_env`]);
//! - **the durability journal** ([`journal`]): records what each directory listed and
//!   what each file held when it was last fsynced, so a test can build the image a power
//!   loss would leave behind — unsynced data AND unsynced directory entries gone.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether any fault rule or journal is active.
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// The kinds of operation a fault rule can match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// A `pwrite` of log, checkpoint or state data.
    Write,
    /// An fsync (fdatasync) of a file.
    Sync,
    /// An fsync of a directory.
    SyncDir,
    /// Creating a file or directory.
    Create,
    /// A rename.
    Rename,
    /// A truncation (`set_len`).
    Truncate,
}

#[inline]
fn hooks(op: Op, path: &Path) -> io::Result<()> {
    if ACTIVE.load(Ordering::Relaxed) {
        faults::check(op, path)?;
    }
    Ok(())
}

#[inline]
fn after_sync(path: &Path) {
    if ACTIVE.load(Ordering::Relaxed) {
        journal::synced(path);
    }
}

/// Writes all of `buf` at `offset`.
pub fn write_all_at(file: &File, buf: &[u8], offset: u64, path: &Path) -> io::Result<()> {
    hooks(Op::Write, path)?;
    file.write_all_at(buf, offset)
}

/// fdatasync of a file.
pub fn sync_data(file: &File, path: &Path) -> io::Result<()> {
    hooks(Op::Sync, path)?;
    file.sync_data()?;
    after_sync(path);
    Ok(())
}

/// fsync of a directory: makes the creates, renames and removals of entries in it
/// durable (POSIX promises nothing about them before).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    hooks(Op::SyncDir, dir)?;
    File::open(dir)?.sync_all()?;
    if ACTIVE.load(Ordering::Relaxed) {
        journal::dir_synced(dir);
    }
    Ok(())
}

/// fsync of the directory holding `path`.
pub fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => sync_dir(p),
        _ => sync_dir(Path::new(".")),
    }
}

/// Truncates (or extends) a file to `len`.
pub fn set_len(file: &File, len: u64, path: &Path) -> io::Result<()> {
    hooks(Op::Truncate, path)?;
    file.set_len(len)
}

/// Opens `path` for reading and writing, creating it if missing (not truncating).
pub fn open_or_create(path: &Path) -> io::Result<File> {
    if !path.exists() {
        hooks(Op::Create, path)?;
    }
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

/// Creates `path` empty (truncating an existing file), open for reading and writing.
pub fn create_empty(path: &Path) -> io::Result<File> {
    hooks(Op::Create, path)?;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
}

/// Creates `dir` and any missing parents, fsyncing the directory that gained each new
/// entry, so a partition directory cannot vanish in a power loss after its log was
/// written and acknowledged.
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent()
        && !parent.as_os_str().is_empty()
    {
        create_dir_all(parent)?;
    }
    hooks(Op::Create, dir)?;
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => return Ok(()),
        Err(e) => return Err(e),
    }
    sync_parent(dir)
}

/// Renames `from` to `to`; the caller fsyncs the directory (several renames in one
/// directory share one fsync).
pub fn rename_unsynced(from: &Path, to: &Path) -> io::Result<()> {
    hooks(Op::Rename, from)?;
    std::fs::rename(from, to)
}

/// Renames `from` to `to` and fsyncs the directories involved.
pub fn rename(from: &Path, to: &Path) -> io::Result<()> {
    rename_unsynced(from, to)?;
    sync_parent(to)?;
    if from.parent() != to.parent() {
        sync_parent(from)?;
    }
    Ok(())
}

/// Replaces `path` with a file holding `bytes`, durably and atomically: a crash leaves
/// either the old file or the new one (written beside it, fsynced, renamed over it,
/// directory fsynced).
pub fn replace_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let file = create_empty(&tmp)?;
    write_all_at(&file, bytes, 0, &tmp)?;
    sync_data(&file, &tmp)?;
    rename(&tmp, path)
}

pub mod faults {
    //! Injected failures: rules matching an operation and a path, failing with an errno.

    use super::{ACTIVE, Op};
    use std::io;
    use std::path::Path;
    use std::sync::Mutex;
    use std::sync::atomic::Ordering;

    /// One rule: operations of kind `op` on paths containing `path_contains` fail with
    /// `errno`, after the first `skip` matches, only every `every`-th of them (1: each),
    /// at most `times` times (`None`: no limit).
    #[derive(Debug, Clone)]
    pub struct Rule {
        pub op: Op,
        pub path_contains: String,
        pub errno: i32,
        pub skip: u64,
        pub every: u64,
        pub times: Option<u64>,
        /// How many operations this rule has failed.
        pub failed: u64,
        /// How many operations this rule has matched (failed or skipped).
        pub matched: u64,
    }

    impl Rule {
        /// A rule failing every matching operation.
        pub fn new(op: Op, path_contains: impl Into<String>, errno: i32) -> Rule {
            Rule {
                op,
                path_contains: path_contains.into(),
                errno,
                skip: 0,
                every: 1,
                times: None,
                failed: 0,
                matched: 0,
            }
        }

        pub fn skip(mut self, n: u64) -> Rule {
            self.skip = n;
            self
        }

        pub fn times(mut self, n: u64) -> Rule {
            self.times = Some(n);
            self
        }

        pub fn every(mut self, n: u64) -> Rule {
            self.every = n.max(1);
            self
        }
    }

    /// Failures injected so far (a test asserts its rule fired).
    pub static INJECTED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

    static RULES: Mutex<Vec<Rule>> = Mutex::new(Vec::new());

    /// Adds a rule.
    pub fn inject(rule: Rule) {
        RULES.lock().unwrap().push(rule);
        ACTIVE.store(true, Ordering::Relaxed);
    }

    /// Removes every rule whose path pattern contains `path_contains` (a test's own
    /// directory), so parallel tests do not clear each other's rules.
    pub fn clear(path_contains: &str) {
        RULES
            .lock()
            .unwrap()
            .retain(|r| !r.path_contains.contains(path_contains));
    }

    pub(super) fn check(op: Op, path: &Path) -> io::Result<()> {
        let mut rules = RULES.lock().unwrap();
        if rules.is_empty() {
            return Ok(());
        }
        let p = path.to_string_lossy();
        for r in rules.iter_mut() {
            if r.op != op || !p.contains(r.path_contains.as_str()) {
                continue;
            }
            r.matched += 1;
            if r.matched <= r.skip || (r.matched - r.skip) % r.every != 0 {
                continue;
            }
            if r.times.is_some_and(|t| r.failed >= t) {
                continue;
            }
            r.failed += 1;
            INJECTED.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(?op, path = %p, errno = r.errno, "injected storage fault");
            return Err(io::Error::from_raw_os_error(r.errno));
        }
        Ok(())
    }

    /// Parses `STROM_FAULTS`: rules separated by `;`, each
    /// `op:errno[:path=SUBSTRING][:skip=N][:every=N][:times=N]` with op one of write, sync,
    /// syncdir, create, rename, truncate and errno `EIO`, `ENOSPC` or a number. For
    /// fault-injection tests of a whole broker; never set in production.
    pub fn parse(spec: &str) -> Result<Vec<Rule>, String> {
        let mut out = Vec::new();
        for part in spec.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            let mut fields = part.split(':');
            let op = match fields.next().unwrap_or("") {
                "write" => Op::Write,
                "sync" => Op::Sync,
                "syncdir" => Op::SyncDir,
                "create" => Op::Create,
                "rename" => Op::Rename,
                "truncate" => Op::Truncate,
                other => return Err(format!("unknown operation {other:?} in {part:?}")),
            };
            let errno = match fields.next().unwrap_or("") {
                "EIO" => 5,
                "ENOSPC" => 28,
                n => n
                    .parse()
                    .map_err(|_| format!("bad errno {n:?} in {part:?}"))?,
            };
            let mut rule = Rule::new(op, "", errno);
            for f in fields {
                let (k, v) = f
                    .split_once('=')
                    .ok_or_else(|| format!("expected key=value, got {f:?} in {part:?}"))?;
                let num = || v.parse::<u64>().map_err(|_| format!("bad number {v:?}"));
                match k {
                    "path" => rule.path_contains = v.to_string(),
                    "skip" => rule.skip = num()?,
                    "every" => rule.every = num()?.max(1),
                    "times" => rule.times = Some(num()?),
                    _ => return Err(format!("unknown key {k:?} in {part:?}")),
                }
            }
            out.push(rule);
        }
        Ok(out)
    }

    /// Installs the rules of `STROM_FAULTS`, if set. Returns how many.
    pub fn from_env() -> Result<usize, String> {
        let Ok(spec) = std::env::var("STROM_FAULTS") else {
            return Ok(0);
        };
        let rules = parse(&spec)?;
        let n = rules.len();
        for r in rules {
            inject(r);
        }
        Ok(n)
    }
}

pub mod journal {
    //! What would survive a power loss: each directory's listing as of its last fsync
    //! and each file's contents as of its last fsync (by inode, so renames carry data
    //! along). [`crash_image`] writes that state out as a new directory tree.

    use super::ACTIVE;
    use std::collections::HashMap;
    use std::io;
    use std::os::unix::fs::MetadataExt;
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;
    use std::sync::atomic::Ordering;

    #[derive(Default)]
    struct Journal {
        /// Directory → its durable entries (name → inode, is_dir).
        listings: HashMap<PathBuf, HashMap<String, (u64, bool)>>,
        /// Inode → durable file contents.
        contents: HashMap<u64, Vec<u8>>,
    }

    static JOURNALS: Mutex<Vec<(PathBuf, Journal)>> = Mutex::new(Vec::new());

    /// Starts journaling everything under `root`, taking its current state as durable.
    pub fn start(root: &Path) -> io::Result<()> {
        let root = root.canonicalize()?;
        let mut j = Journal::default();
        snapshot_tree(&root, &mut j)?;
        JOURNALS.lock().unwrap().push((root, j));
        ACTIVE.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Stops journaling `root`.
    pub fn stop(root: &Path) {
        let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
        JOURNALS.lock().unwrap().retain(|(r, _)| *r != root);
    }

    fn snapshot_tree(dir: &Path, j: &mut Journal) -> io::Result<()> {
        let listing = read_listing(dir)?;
        for (name, (ino, is_dir)) in &listing {
            let p = dir.join(name);
            if *is_dir {
                snapshot_tree(&p, j)?;
            } else {
                j.contents
                    .insert(*ino, std::fs::read(&p).unwrap_or_default());
            }
        }
        j.listings.insert(dir.to_path_buf(), listing);
        Ok(())
    }

    fn read_listing(dir: &Path) -> io::Result<HashMap<String, (u64, bool)>> {
        let mut out = HashMap::new();
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            let Ok(md) = e.metadata() else { continue };
            out.insert(
                e.file_name().to_string_lossy().into_owned(),
                (md.ino(), md.is_dir()),
            );
        }
        Ok(out)
    }

    fn with_journal(path: &Path, f: impl FnOnce(&mut Journal, &Path)) {
        let Ok(abs) = path.canonicalize() else { return };
        let mut js = JOURNALS.lock().unwrap();
        if let Some((_, j)) = js.iter_mut().find(|(r, _)| abs.starts_with(r)) {
            f(j, &abs);
        }
    }

    pub(super) fn synced(path: &Path) {
        with_journal(path, |j, abs| {
            if let (Ok(md), Ok(data)) = (std::fs::metadata(abs), std::fs::read(abs)) {
                j.contents.insert(md.ino(), data);
            }
        });
    }

    pub(super) fn dir_synced(dir: &Path) {
        with_journal(dir, |j, abs| {
            if let Ok(listing) = read_listing(abs) {
                j.listings.insert(abs.to_path_buf(), listing);
            }
        });
    }

    /// Writes what a power loss would leave of `root` into `dest` (which must not
    /// exist): only directory entries that were fsynced into their directory, each file
    /// with the contents of its last fsync (empty if never synced).
    pub fn crash_image(root: &Path, dest: &Path) -> io::Result<()> {
        let root = root.canonicalize()?;
        let js = JOURNALS.lock().unwrap();
        let (_, j) = js
            .iter()
            .find(|(r, _)| *r == root)
            .ok_or_else(|| io::Error::other("no journal for this root"))?;
        write_image(j, &root, dest)
    }

    fn write_image(j: &Journal, dir: &Path, dest: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dest)?;
        let Some(listing) = j.listings.get(dir) else {
            return Ok(());
        };
        for (name, (ino, is_dir)) in listing {
            if *is_dir {
                write_image(j, &dir.join(name), &dest.join(name))?;
            } else {
                let data = j.contents.get(ino).map(Vec::as_slice).unwrap_or(&[]);
                std::fs::write(dest.join(name), data)?;
            }
        }
        Ok(())
    }
}
