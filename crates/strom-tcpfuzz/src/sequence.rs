//! Sequences of requests: how one is generated from a seed (the stateful part: a topic is
//! created, then used, then deleted, with mutated requests in between, over a few
//! connections) and how it is written to and read from a file for `replay`.

use std::fmt::Write as _;
use std::path::Path;

use kafka_protocol::messages::ApiKey;
use strom_wire::SUPPORTED_APIS;

use crate::corpus::{self, Ctx};
use crate::message::api_name;
use crate::mutate;
use crate::rng::{Rng, mix};

/// One request to send: on which of the sequence's connections, and its frame body
/// (request header and message; the 4-byte length prefix is added when sending).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub conn: u8,
    pub api_key: i16,
    pub bytes: Vec<u8>,
    /// What was mutated, for the report; empty for an unmutated request.
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sequence {
    pub seed: u64,
    pub steps: Vec<Step>,
}

/// How likely a request is to be mutated, in percent.
const MUTATE_PERCENT: u32 = 40;
/// The same for the CreateTopics that opens a sequence: most requests after it need the
/// topic to exist (a CreatePartitions of 2^31-1 only reaches the allocation for an
/// existing topic), so it is left intact more often.
const SETUP_MUTATE_PERCENT: u32 = 10;

/// The apis a sequence draws its middle steps from, with weights: the ones that move data
/// and change state most often.
const MIDDLE: &[(ApiKey, u32)] = &[
    (ApiKey::Produce, 24),
    (ApiKey::Fetch, 8),
    (ApiKey::ListOffsets, 5),
    (ApiKey::Metadata, 6),
    (ApiKey::CreatePartitions, 8),
    (ApiKey::CreateTopics, 6),
    (ApiKey::InitProducerId, 3),
    (ApiKey::FindCoordinator, 2),
    (ApiKey::JoinGroup, 3),
    (ApiKey::SyncGroup, 2),
    (ApiKey::Heartbeat, 2),
    (ApiKey::LeaveGroup, 2),
    (ApiKey::OffsetCommit, 4),
    (ApiKey::OffsetFetch, 3),
    (ApiKey::DescribeGroups, 2),
    (ApiKey::ListGroups, 1),
    (ApiKey::DeleteGroups, 2),
    (ApiKey::OffsetDelete, 2),
    (ApiKey::DeleteRecords, 3),
    (ApiKey::OffsetForLeaderEpoch, 2),
    (ApiKey::DescribeConfigs, 2),
    (ApiKey::AlterConfigs, 2),
    (ApiKey::IncrementalAlterConfigs, 2),
    (ApiKey::DescribeCluster, 1),
    (ApiKey::ApiVersions, 1),
    (ApiKey::DeleteTopics, 2),
];

/// The seed of iteration `i` of a run started with `run_seed`.
pub fn iteration_seed(run_seed: u64, i: u64) -> u64 {
    mix(run_seed ^ mix(i.wrapping_add(1)))
}

/// The sequence a seed names: usually CreateTopics first, 2-10 requests of any api about
/// the same topic and group, sometimes DeleteTopics last; each request mutated with
/// probability [`MUTATE_PERCENT`].
pub fn generate(seed: u64) -> Sequence {
    let mut rng = Rng::new(seed);
    let mut ctx = Ctx::new(&mut rng, seed);
    let conns = rng.range(1, 3) as u8;
    let mut apis = Vec::new();
    if rng.chance(90) {
        apis.push(ApiKey::CreateTopics);
    }
    let weights: Vec<u32> = MIDDLE.iter().map(|(_, w)| *w).collect();
    for _ in 0..rng.range(2, 10) {
        apis.push(MIDDLE[rng.weighted(&weights)].0);
    }
    if rng.chance(40) {
        apis.push(ApiKey::DeleteTopics);
    }
    let mut steps: Vec<Step> = Vec::new();
    for (i, api) in apis.into_iter().enumerate() {
        let range = SUPPORTED_APIS
            .iter()
            .find(|r| r.key == api)
            .expect("only advertised apis are drawn");
        // Repeated array entries now and then, sometimes many.
        ctx.repeat = match rng.below(100) {
            0..=89 => 1,
            90..=97 => rng.range(2, 20) as usize,
            _ => rng.range(100, 3000) as usize,
        };
        let setup = i == 0 && api == ApiKey::CreateTopics;
        ctx.setup = setup;
        if api == ApiKey::JoinGroup && rng.chance(50) {
            ctx.member = format!("m-{}", rng.below(4));
        }
        let versions = corpus::buildable_versions(range);
        let version = rng.range(*versions.start() as i64, *versions.end() as i64) as i16;
        let Ok(mut msg) = corpus::build(api, version, i as i32, &ctx, &mut rng) else {
            continue;
        };
        let mut note = String::new();
        if rng.chance(if setup {
            SETUP_MUTATE_PERCENT
        } else {
            MUTATE_PERCENT
        }) {
            let donor = if steps.is_empty() {
                Vec::new()
            } else {
                steps[rng.below(steps.len())].bytes.clone()
            };
            note = mutate::mutate(&mut msg, &mut rng, &donor).join("; ");
        }
        steps.push(Step {
            conn: rng.below(conns as usize) as u8,
            api_key: msg.api_key,
            bytes: msg.bytes,
            note,
        });
    }
    Sequence { seed, steps }
}

const MAGIC_LINE: &str = "# strom-tcpfuzz sequence v1";

impl Sequence {
    /// The replay file: comment lines (`#`), then one line per request:
    /// `<connection> <api name>/<api key> <frame body in hex>  # <mutations>`.
    pub fn to_text(&self, comments: &[String]) -> String {
        let mut out = String::new();
        writeln!(out, "{MAGIC_LINE}").unwrap();
        writeln!(out, "# seed {:#018x}", self.seed).unwrap();
        for c in comments {
            for line in c.lines() {
                writeln!(out, "# {line}").unwrap();
            }
        }
        for step in &self.steps {
            let mut hex: String = step.bytes.iter().map(|b| format!("{b:02x}")).collect();
            if hex.is_empty() {
                // A request truncated to nothing: an empty frame.
                hex.push('-');
            }
            write!(
                out,
                "{} {}/{} {hex}",
                step.conn,
                api_name(step.api_key),
                step.api_key
            )
            .unwrap();
            if !step.note.is_empty() {
                write!(out, "  # {}", step.note.replace('\n', " ")).unwrap();
            }
            out.push('\n');
        }
        out
    }

    pub fn from_text(text: &str) -> anyhow::Result<Sequence> {
        let mut seed = 0;
        let mut steps = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if let Some(rest) = line.strip_prefix("# seed ") {
                seed = u64::from_str_radix(rest.trim().trim_start_matches("0x"), 16)?;
            }
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (data, note) = match line.split_once("  # ") {
                Some((d, note)) => (d, note.to_string()),
                None => (line, String::new()),
            };
            let mut parts = data.split_whitespace();
            let (Some(conn), Some(api), Some(hex)) = (parts.next(), parts.next(), parts.next())
            else {
                anyhow::bail!("line {}: want `<conn> <api>/<key> <hex>`", n + 1);
            };
            let hex = if hex == "-" { "" } else { hex };
            let bytes = decode_hex(hex)
                .ok_or_else(|| anyhow::anyhow!("line {}: bad hex {hex:?}", n + 1))?;
            // The api the request was built as (a mutation may have changed the key bytes).
            let api_key = api
                .rsplit_once('/')
                .and_then(|(_, k)| k.parse().ok())
                .ok_or_else(|| anyhow::anyhow!("line {}: want <api>/<key>", n + 1))?;
            steps.push(Step {
                conn: conn.parse()?,
                api_key,
                bytes,
                note,
            });
        }
        Ok(Sequence { seed, steps })
    }

    pub fn load(path: &Path) -> anyhow::Result<Sequence> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Self::from_text(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_names_one_sequence_and_files_round_trip() {
        for i in 0..100 {
            let seed = iteration_seed(42, i);
            let a = generate(seed);
            assert_eq!(a, generate(seed));
            assert!(!a.steps.is_empty());
            let back =
                Sequence::from_text(&a.to_text(&["a finding\nover two lines".into()])).unwrap();
            assert_eq!(back.seed, a.seed);
            assert_eq!(back.steps.len(), a.steps.len());
            for (x, y) in back.steps.iter().zip(&a.steps) {
                assert_eq!((x.conn, x.api_key, &x.note), (y.conn, y.api_key, &y.note));
                assert!(x.bytes == y.bytes);
            }
        }
        assert_ne!(
            generate(iteration_seed(42, 0)),
            generate(iteration_seed(42, 1))
        );
    }

    #[test]
    fn sequences_are_stateful_and_mutated() {
        let seqs: Vec<Sequence> = (0..200).map(|i| generate(iteration_seed(1, i))).collect();
        let first_create = seqs
            .iter()
            .filter(|s| s.steps[0].api_key == ApiKey::CreateTopics as i16)
            .count();
        assert!(first_create > 150, "{first_create}");
        // The opening CreateTopics really creates the topic, and is mostly left intact.
        let intact: Vec<&Step> = seqs
            .iter()
            .map(|s| &s.steps[0])
            .filter(|st| st.api_key == ApiKey::CreateTopics as i16 && st.note.is_empty())
            .collect();
        assert!(intact.len() * 100 > first_create * 80, "{}", intact.len());
        for st in intact {
            let req = strom_wire::decode_request(st.bytes.clone().into()).unwrap();
            let kafka_protocol::messages::RequestKind::CreateTopics(ct) = req.body else {
                panic!("not CreateTopics");
            };
            assert!(!ct.validate_only);
        }
        let steps: Vec<&Step> = seqs.iter().flat_map(|s| &s.steps).collect();
        let mutated = steps.iter().filter(|s| !s.note.is_empty()).count();
        assert!(mutated * 100 > steps.len() * 25 && mutated * 100 < steps.len() * 55);
        assert!(seqs.iter().any(|s| s.steps.iter().any(|st| st.conn > 0)));
    }
}
