//! Unlinks files on a background thread: deleting a 1 GiB segment blocks for ~300 ms,
//! which must never happen on the produce or fetch path.

use std::path::PathBuf;
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Suffix given to files that are scheduled for deletion. A rename is cheap and makes
/// the file invisible to log loading, so a crash before the unlink loses nothing.
pub(crate) const DELETED_SUFFIX: &str = ".deleted";

/// A handle to the deletion thread; clones share the thread.
#[derive(Debug, Clone)]
pub struct Deleter {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    tx: Mutex<Option<Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

enum Job {
    Files(Vec<PathBuf>),
    Dir(PathBuf),
    Barrier(Sender<()>),
}

impl Deleter {
    /// Starts the deletion thread.
    pub fn start() -> Deleter {
        let (tx, rx) = channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("strom-deleter".into())
            .spawn(move || {
                for job in rx {
                    match job {
                        Job::Files(paths) => {
                            for p in paths {
                                if let Err(e) = std::fs::remove_file(&p)
                                    && e.kind() != std::io::ErrorKind::NotFound {
                                        tracing::warn!(path = %p.display(), error = %e, "could not delete file");
                                    }
                            }
                        }
                        Job::Dir(p) => {
                            if let Err(e) = std::fs::remove_dir_all(&p) {
                                tracing::warn!(path = %p.display(), error = %e, "could not delete directory");
                            }
                        }
                        Job::Barrier(done) => {
                            let _ = done.send(());
                        }
                    }
                }
            })
            .expect("spawn deleter thread");
        Deleter {
            inner: Arc::new(Inner {
                tx: Mutex::new(Some(tx)),
                thread: Mutex::new(Some(thread)),
            }),
        }
    }

    fn send(&self, job: Job) {
        let guard = self.inner.tx.lock().unwrap();
        let unsent = match guard.as_ref() {
            Some(tx) => tx.send(job).err().map(|e| e.0),
            None => Some(job),
        };
        drop(guard);
        // After shutdown, delete inline: correctness over latency.
        if let Some(job) = unsent {
            run_inline(job);
        }
    }

    /// Renames each existing file to `<name>.deleted` now, fsyncs the directories that
    /// changed (so a power loss cannot bring back a segment recovery would mistake for
    /// live data) and unlinks the files later.
    pub fn delete_files(&self, paths: impl IntoIterator<Item = PathBuf>) -> std::io::Result<()> {
        let mut renamed = Vec::new();
        let mut dirs: Vec<PathBuf> = Vec::new();
        for p in paths {
            let mut target = p.clone().into_os_string();
            target.push(DELETED_SUFFIX);
            match crate::disk::rename_unsynced(&p, std::path::Path::new(&target)) {
                Ok(()) => {
                    if let Some(d) = p.parent()
                        && !dirs.iter().any(|x| x == d)
                    {
                        dirs.push(d.to_path_buf());
                    }
                    renamed.push(PathBuf::from(target));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        for d in &dirs {
            crate::disk::sync_dir(d)?;
        }
        self.send(Job::Files(renamed));
        Ok(())
    }

    /// Unlinks already-renamed leftovers (found at start-up) later.
    pub fn delete_renamed(&self, paths: Vec<PathBuf>) {
        self.send(Job::Files(paths));
    }

    /// Removes a whole directory tree later; the caller renames it out of the way first.
    pub fn delete_dir(&self, path: PathBuf) {
        self.send(Job::Dir(path));
    }

    /// Waits until everything handed over so far is deleted (tests, shutdown).
    pub fn wait_idle(&self) {
        let (tx, rx) = channel();
        self.send(Job::Barrier(tx));
        let _ = rx.recv();
    }

    /// Finishes pending deletions and stops the thread.
    pub fn shutdown(&self) {
        self.inner.tx.lock().unwrap().take();
        if let Some(t) = self.inner.thread.lock().unwrap().take() {
            let _ = t.join();
        }
    }
}

fn run_inline(job: Job) {
    match job {
        Job::Files(paths) => paths.into_iter().for_each(|p| {
            let _ = std::fs::remove_file(p);
        }),
        Job::Dir(p) => {
            let _ = std::fs::remove_dir_all(p);
        }
        Job::Barrier(done) => {
            let _ = done.send(());
        }
    }
}
