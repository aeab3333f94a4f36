//! `strom consume TOPIC`: prints records with a kcat-like `--format`, from a chosen
//! position or as a member of a consumer group that commits what it printed.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use serde_json::json;
use strom_client::{
    Client, ClientError, FetchOptions, GroupConfig, GroupConsumer, OffsetSpec, Record,
};
use strom_wire::ErrorCode;

use crate::cli::{Common, block_on, format_datetime, parse_datetime};

#[derive(Debug, Args)]
pub(crate) struct ConsumeArgs {
    /// The topic to read
    pub topic: String,
    /// Where to start: beginning, end, an offset, or an RFC 3339 datetime (the first record
    /// at or after it). With --group it applies only to partitions without a committed offset
    #[arg(long, default_value = "beginning", value_name = "WHERE")]
    pub from: String,
    /// Start at this offset (the same as --from OFFSET)
    #[arg(long, conflicts_with = "from")]
    pub offset: Option<i64>,
    /// Read only these partitions (repeatable) [default: all]
    #[arg(long, short = 'p')]
    pub partition: Vec<i32>,
    /// Consume as a member of this group, committing offsets of what was printed
    #[arg(long, short = 'g', conflicts_with = "partition")]
    pub group: Option<String>,
    /// Stop after this many records
    #[arg(long, short = 'n')]
    pub count: Option<u64>,
    /// How to print each record: %k key, %v value, %o offset, %p partition, %t topic,
    /// %T timestamp (ms), %h headers (k=v,k2=v2), %K/%S key/value length, %% a percent
    /// sign; \n \t \r \\ escapes
    #[arg(long, short = 'F', default_value = "%v\\n")]
    pub format: String,
    /// Exit after this long without a new record (e.g. 5s, 500ms; plain numbers are seconds)
    #[arg(long, value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    #[command(flatten)]
    pub common: Common,
}

pub(crate) fn run(a: ConsumeArgs) -> anyhow::Result<()> {
    block_on(consume(a))
}

/// Parses `5`, `5s`, `500ms`, `2m`.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("expected a duration like 5s or 500ms, got {s:?}");
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(bad()),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| bad())
}

/// Where to start reading a partition.
#[derive(Debug, Clone, Copy)]
enum Start {
    Spec(OffsetSpec),
    Offset(i64),
}

fn parse_start(a: &ConsumeArgs) -> anyhow::Result<Start> {
    if let Some(o) = a.offset {
        return Ok(Start::Offset(o));
    }
    Ok(match a.from.as_str() {
        "beginning" | "earliest" | "start" => Start::Spec(OffsetSpec::Earliest),
        "end" | "latest" => Start::Spec(OffsetSpec::Latest),
        s if s.bytes().all(|c| c.is_ascii_digit()) => {
            Start::Offset(s.parse().context("offset out of range")?)
        }
        s => Start::Spec(OffsetSpec::Timestamp(parse_datetime(s).map_err(|e| {
            anyhow::anyhow!("--from: expected beginning, end, an offset or a datetime; {e}")
        })?)),
    })
}

async fn resolve(
    client: &Client,
    topic: &str,
    partitions: &[i32],
    start: Start,
) -> anyhow::Result<BTreeMap<i32, i64>> {
    if partitions.is_empty() {
        return Ok(BTreeMap::new());
    }
    Ok(match start {
        Start::Offset(o) => partitions.iter().map(|&p| (p, o)).collect(),
        Start::Spec(spec) => client.list_offsets(topic, partitions, spec).await?,
    })
}

/// One piece of a parsed `--format`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(Vec<u8>),
    Key,
    Value,
    Offset,
    Partition,
    Topic,
    Timestamp,
    Headers,
    KeyLen,
    ValueLen,
}

fn parse_format(f: &str) -> anyhow::Result<Vec<Piece>> {
    let mut out = Vec::new();
    let mut text = Vec::new();
    let mut chars = f.chars();
    while let Some(c) = chars.next() {
        let piece = match c {
            '%' => match chars.next() {
                Some('k') => Piece::Key,
                Some('v') | Some('s') => Piece::Value,
                Some('o') => Piece::Offset,
                Some('p') => Piece::Partition,
                Some('t') => Piece::Topic,
                Some('T') => Piece::Timestamp,
                Some('h') => Piece::Headers,
                Some('K') => Piece::KeyLen,
                Some('S') => Piece::ValueLen,
                Some('%') => {
                    text.push(b'%');
                    continue;
                }
                other => bail!(
                    "--format: unknown %{} (use %k %v %o %p %t %T %h %K %S %%)",
                    other.map_or(String::new(), String::from)
                ),
            },
            '\\' => {
                match chars.next() {
                    Some('n') => text.push(b'\n'),
                    Some('t') => text.push(b'\t'),
                    Some('r') => text.push(b'\r'),
                    Some('\\') => text.push(b'\\'),
                    Some(o) => {
                        text.push(b'\\');
                        text.extend_from_slice(o.to_string().as_bytes());
                    }
                    None => text.push(b'\\'),
                }
                continue;
            }
            c => {
                let mut b = [0; 4];
                text.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
                continue;
            }
        };
        if !text.is_empty() {
            out.push(Piece::Text(std::mem::take(&mut text)));
        }
        out.push(piece);
    }
    if !text.is_empty() {
        out.push(Piece::Text(text));
    }
    Ok(out)
}

fn render(out: &mut Vec<u8>, pieces: &[Piece], topic: &str, partition: i32, r: &Record) {
    for p in pieces {
        match p {
            Piece::Text(t) => out.extend_from_slice(t),
            Piece::Key => out.extend_from_slice(r.key.as_deref().unwrap_or_default()),
            Piece::Value => out.extend_from_slice(r.value.as_deref().unwrap_or_default()),
            Piece::Offset => out.extend_from_slice(r.offset.to_string().as_bytes()),
            Piece::Partition => out.extend_from_slice(partition.to_string().as_bytes()),
            Piece::Topic => out.extend_from_slice(topic.as_bytes()),
            Piece::Timestamp => out.extend_from_slice(r.timestamp.to_string().as_bytes()),
            Piece::Headers => {
                for (i, (k, v)) in r.headers.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(k.as_bytes());
                    out.push(b'=');
                    out.extend_from_slice(v.as_deref().unwrap_or_default());
                }
            }
            Piece::KeyLen => out.extend_from_slice(
                r.key
                    .as_ref()
                    .map_or(-1, |k| k.len() as i64)
                    .to_string()
                    .as_bytes(),
            ),
            Piece::ValueLen => out.extend_from_slice(
                r.value
                    .as_ref()
                    .map_or(-1, |v| v.len() as i64)
                    .to_string()
                    .as_bytes(),
            ),
        }
    }
}

fn render_json(out: &mut Vec<u8>, topic: &str, partition: i32, r: &Record) {
    let text = |b: &Option<Vec<u8>>| b.as_ref().map(|b| String::from_utf8_lossy(b).into_owned());
    let headers: Vec<_> = r
        .headers
        .iter()
        .map(|(k, v)| json!({"key": k, "value": text(v)}))
        .collect();
    let v = json!({
        "topic": topic,
        "partition": partition,
        "offset": r.offset,
        "timestamp": r.timestamp,
        "time": format_datetime(r.timestamp),
        "key": text(&r.key),
        "value": text(&r.value),
        "headers": headers,
    });
    out.extend_from_slice(v.to_string().as_bytes());
    out.push(b'\n');
}

/// Reads, prints and (with a group) commits until the count, the idle timeout or Ctrl-C.
async fn consume(a: ConsumeArgs) -> anyhow::Result<()> {
    let pieces = parse_format(&a.format)?;
    let start = parse_start(&a)?;
    let client = a.common.connect().await?;
    let all = client.partitions(&a.topic).await?;
    for p in &a.partition {
        if !all.contains(p) {
            bail!(
                "topic {} has no partition {p} (it has {})",
                a.topic,
                all.len()
            );
        }
    }
    let mut member = match &a.group {
        Some(g) => Some(
            GroupConsumer::join(
                client.clone(),
                g,
                vec![a.topic.clone()],
                GroupConfig::default(),
            )
            .await?,
        ),
        None => None,
    };
    let mut positions = match &member {
        Some(m) => group_positions(&client, m, &a.topic, start).await?,
        None => {
            let ps = if a.partition.is_empty() {
                all.clone()
            } else {
                a.partition.clone()
            };
            resolve(&client, &a.topic, &ps, start).await?
        }
    };
    let mut printed = 0u64;
    let mut last_record = Instant::now();
    let mut stdout = std::io::stdout().lock();
    let mut buf = Vec::with_capacity(64 * 1024);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let result: anyhow::Result<()> = async {
        loop {
            if a.count.is_some_and(|n| printed >= n) {
                return Ok(());
            }
            if let Some(m) = member.as_mut()
                && m.needs_rejoin()
            {
                m.commit(&commit_map(&a.topic, &positions)).await.ok();
                m.rejoin().await?;
                positions = group_positions(&client, m, &a.topic, start).await?;
            }
            let max_wait = a.timeout.map_or(Duration::from_millis(500), |t| {
                t.min(Duration::from_millis(500))
            });
            if positions.is_empty() {
                // A group member without partitions waits for a rebalance.
                tokio::select! {
                    _ = tokio::time::sleep(max_wait) => {}
                    _ = &mut ctrl_c => return Ok(()),
                }
            } else {
                let want: Vec<(i32, i64)> = positions.iter().map(|(&p, &o)| (p, o)).collect();
                let opts = FetchOptions {
                    max_wait,
                    ..FetchOptions::default()
                };
                let fetched = tokio::select! {
                    r = client.fetch(&a.topic, &want, opts) => r?,
                    _ = &mut ctrl_c => return Ok(()),
                };
                let mut got_any = false;
                for part in fetched {
                    match ErrorCode::from_code(part.error_code) {
                        Some(ErrorCode::None) => {}
                        Some(ErrorCode::OffsetOutOfRange) => {
                            let spec = if positions[&part.partition] < part.log_start_offset.max(0)
                            {
                                OffsetSpec::Earliest
                            } else {
                                OffsetSpec::Latest
                            };
                            let reset = client
                                .list_offsets(&a.topic, &[part.partition], spec)
                                .await?;
                            positions.extend(reset);
                            continue;
                        }
                        _ if strom_client::is_retriable_code(part.error_code) => continue,
                        _ => {
                            ClientError::check(part.error_code, None, || {
                                format!("fetch {}/{}", a.topic, part.partition)
                            })?;
                        }
                    }
                    for r in &part.records {
                        if a.count.is_some_and(|n| printed >= n) {
                            break;
                        }
                        if a.common.json() {
                            render_json(&mut buf, &a.topic, part.partition, r);
                        } else {
                            render(&mut buf, &pieces, &a.topic, part.partition, r);
                        }
                        printed += 1;
                        got_any = true;
                        positions.insert(part.partition, r.offset + 1);
                    }
                }
                if !buf.is_empty() {
                    match stdout.write_all(&buf).and_then(|()| stdout.flush()) {
                        Ok(()) => {}
                        // The reader went away (`| head`): stop quietly.
                        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                        Err(e) => return Err(e).context("cannot write to stdout"),
                    }
                    buf.clear();
                }
                if got_any {
                    last_record = Instant::now();
                    if let Some(m) = &member {
                        m.commit(&commit_map(&a.topic, &positions)).await?;
                    }
                }
            }
            if a.timeout.is_some_and(|t| last_record.elapsed() >= t) {
                return Ok(());
            }
        }
    }
    .await;
    if let Some(m) = member {
        if result.is_ok() {
            m.commit(&commit_map(&a.topic, &positions)).await?;
        }
        m.leave().await.ok();
    }
    result
}

fn commit_map(topic: &str, positions: &BTreeMap<i32, i64>) -> BTreeMap<String, BTreeMap<i32, i64>> {
    [(topic.to_owned(), positions.clone())]
        .into_iter()
        .collect()
}

/// A member's starting positions: the committed offset of each assigned partition, or
/// `start` where there is none.
async fn group_positions(
    client: &Client,
    member: &GroupConsumer,
    topic: &str,
    start: Start,
) -> anyhow::Result<BTreeMap<i32, i64>> {
    let assigned = member.assignment().get(topic).cloned().unwrap_or_default();
    let committed = member.committed().await?.remove(topic).unwrap_or_default();
    let missing: Vec<i32> = assigned
        .iter()
        .copied()
        .filter(|p| !committed.contains_key(p))
        .collect();
    let mut out = resolve(client, topic, &missing, start).await?;
    out.extend(committed.into_iter().filter(|(p, _)| assigned.contains(p)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_render_like_kcat() {
        let pieces = parse_format("%k=%v @%o/%p %t %T [%h] %K %S 100%%\\n").unwrap();
        let r = Record {
            timestamp: 42,
            key: Some(b"k".to_vec()),
            value: Some(b"v".to_vec()),
            headers: vec![("a".into(), Some(b"1".to_vec())), ("b".into(), None)],
            offset: 7,
        };
        let mut out = Vec::new();
        render(&mut out, &pieces, "t", 3, &r);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "k=v @7/3 t 42 [a=1,b=] 1 1 100%\n"
        );
        assert!(parse_format("%x").is_err());
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("soon").is_err());
    }
}
