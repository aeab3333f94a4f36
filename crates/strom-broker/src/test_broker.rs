//! For unit tests: a broker over a temporary directory, opened and ready.

use std::path::Path;
use std::sync::Arc;

use crate::broker::Broker;
use crate::config::RawSettings;

/// Opens a broker with its data in `dir` and `settings` (file keys and values) on top of
/// the defaults, and waits until it is registered and `__consumer_offsets` exists.
pub(crate) fn open(dir: &Path, settings: &[(&str, &str)]) -> Arc<Broker> {
    let mut raw = RawSettings::default();
    raw.set("data_dir", dir.display().to_string(), "test")
        .unwrap();
    for (key, value) in settings {
        raw.set(key, *value, "test").unwrap();
    }
    let broker = Broker::open(raw.build().unwrap()).unwrap();
    assert!(broker.wait_ready(std::time::Duration::from_secs(10)));
    broker
}

/// A runtime with one worker thread, for tests whose answers arrive from tasks.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}
