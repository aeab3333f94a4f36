//! `partition.metadata`: the topic id written into every partition directory (as Kafka
//! does), so that a directory belongs to one creation of a topic and not merely to its
//! name. A topic deleted and created again under the same name is another topic: its
//! directory must never be taken for the old one's, nor deleted in its place
//! (docs/adr/0004-topic-ids-in-partition-directories.md).
//!
//! The file is two `key: value` lines, `version: 0` and `topic_id: <uuid>`. A directory
//! without it (written before topic ids, or a crash between creating the directory and
//! this file) has no id: it is "legacy", and the live topic of its name adopts it.

use std::path::Path;

use uuid::Uuid;

/// The file's name inside a partition directory.
pub(crate) const FILE: &str = "partition.metadata";

/// The only version written and read.
const VERSION: u32 = 0;

/// The topic id recorded in the partition directory `dir`, or `None` when there is none
/// or it cannot be understood (then the directory is treated as legacy, with a warning).
pub(crate) fn read(dir: &Path) -> Option<Uuid> {
    let path = dir.join(FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read the partition's topic id");
            return None;
        }
    };
    let parsed = parse(&text);
    if parsed.is_none() {
        tracing::warn!(path = %path.display(), "unreadable partition.metadata; the directory counts as one without a topic id");
    }
    parsed
}

fn parse(text: &str) -> Option<Uuid> {
    let mut version = None;
    let mut id = None;
    for line in text.lines() {
        let (key, value) = line.split_once(':')?;
        match key.trim() {
            "version" => version = value.trim().parse::<u32>().ok(),
            "topic_id" => id = Uuid::parse_str(value.trim()).ok(),
            _ => {}
        }
    }
    (version == Some(VERSION)).then_some(id?)
}

/// Records `id` in the partition directory `dir` (created if missing), fsynced. Written
/// before the log's own files, so a log never exists without it but after a crash in
/// between (then it is legacy, above).
pub(crate) fn write(dir: &Path, id: Uuid) -> std::io::Result<()> {
    use strom_log::disk;
    // The directory's own entry and the file's are fsynced too: after a power loss a
    // log directory must not come back without the id that says whose it is.
    disk::create_dir_all(dir)?;
    let path = dir.join(FILE);
    let f = disk::create_empty(&path)?;
    disk::write_all_at(
        &f,
        format!("version: {VERSION}\ntopic_id: {id}\n").as_bytes(),
        0,
        &path,
    )?;
    disk::sync_data(&f, &path)?;
    disk::sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_topic_id_round_trips_and_damage_reads_as_none() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t-0");
        assert_eq!(read(&p), None);
        let id = Uuid::new_v4();
        write(&p, id).unwrap();
        assert_eq!(read(&p), Some(id));
        let other = Uuid::new_v4();
        write(&p, other).unwrap();
        assert_eq!(read(&p), Some(other), "rewritten in place");
        for bad in [
            "",
            "version: 0\n",
            "version: 1\ntopic_id: 6ba7b810-9dad-11d1-80b4-00c04fd430c8\n",
            "version: 0\ntopic_id: not-a-uuid\n",
            "\u{0}\u{0}\u{0}",
        ] {
            std::fs::write(p.join(FILE), bad).unwrap();
            assert_eq!(read(&p), None, "{bad:?}");
        }
    }
}
