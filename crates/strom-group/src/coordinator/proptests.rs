//! Property test: random interleavings of JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
//! OffsetCommit and time passing, from a few clients that act on the answers they get
//! (plus stale and confused requests), never panic the coordinator and keep its
//! invariants: generations only grow, a Stable group's members all have assignments,
//! parked requests exist only in the states that park them, the books agree, and every
//! request is answered exactly once, eventually.

use std::collections::{BTreeSet, HashMap};

use proptest::prelude::*;
use strom_codes::ErrorCode;

use super::harness::*;
use crate::effects::RequestId;
use crate::group::Group;
use crate::request::{HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest, LeavingMember};
use crate::response::Response;
use crate::state::GroupState;

const GROUP: &str = "g";
const CLIENTS: usize = 4;

#[derive(Debug, Clone)]
enum Op {
    /// Join with the client's member id, or with none.
    Join {
        client: usize,
        fresh: bool,
        protocols: usize,
    },
    /// Sync with the client's generation (or a wrong one); as leader it assigns to
    /// every member, or (`partial`) only to itself.
    Sync {
        client: usize,
        stale: bool,
        partial: bool,
    },
    Heartbeat {
        client: usize,
        stale: bool,
    },
    Leave {
        client: usize,
    },
    Commit {
        client: usize,
        simple: bool,
    },
    Tick {
        ms: i64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let client = 0..CLIENTS;
    // Mostly protocols every client shares, sometimes one that conflicts.
    let protocols = prop_oneof![2 => Just(0usize), 2 => Just(1usize), 1 => Just(2usize)];
    prop_oneof![
        3 => (client.clone(), any::<bool>(), protocols)
            .prop_map(|(client, fresh, protocols)| Op::Join { client, fresh, protocols }),
        4 => (client.clone(), prop::bool::weighted(0.1), prop::bool::weighted(0.2))
            .prop_map(|(client, stale, partial)| Op::Sync { client, stale, partial }),
        4 => (client.clone(), prop::bool::weighted(0.1))
            .prop_map(|(client, stale)| Op::Heartbeat { client, stale }),
        1 => client.clone().prop_map(|client| Op::Leave { client }),
        1 => (client, any::<bool>()).prop_map(|(client, simple)| Op::Commit { client, simple }),
        // Mostly less than a session, sometimes past every timeout.
        3 => (0..3_000i64).prop_map(|ms| Op::Tick { ms }),
        1 => (0..40_000i64).prop_map(|ms| Op::Tick { ms }),
    ]
}

/// What a client believes about its membership, learnt from answers.
#[derive(Debug, Default, Clone)]
struct Client {
    member_id: String,
    generation: i32,
}

struct Model {
    h: Harness,
    clients: Vec<Client>,
    /// Which client sent each request, to feed it the answer.
    sent_by: HashMap<RequestId, usize>,
    seen: BTreeSet<RequestId>,
    /// The highest generation observed while the group existed.
    generation: Option<i32>,
}

impl Model {
    fn new() -> Self {
        Model {
            h: Harness::new(),
            clients: vec![Client::default(); CLIENTS],
            sent_by: HashMap::new(),
            seen: BTreeSet::new(),
            generation: None,
        }
    }

    /// Client 0 is static; client 3 speaks JoinGroup v3 (no MEMBER_ID_REQUIRED).
    fn join_request(
        &self,
        client: usize,
        fresh: bool,
        protocols_choice: usize,
    ) -> JoinGroupRequest {
        let list: &[(&str, &[&str])] = match protocols_choice {
            0 => &[("range", &["t"])],
            1 => &[("range", &["t"]), ("roundrobin", &["t", "u"])],
            _ => &[("roundrobin", &["t"])],
        };
        JoinGroupRequest {
            api_version: if client == 3 { 3 } else { 9 },
            member_id: if fresh {
                String::new()
            } else {
                self.clients[client].member_id.clone()
            },
            group_instance_id: (client == 0).then(|| "static-0".to_string()),
            protocols: protocols(list),
            ..join_req(GROUP, &format!("c{client}"))
        }
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Join {
                client,
                fresh,
                protocols,
            } => {
                let req = self.join_request(client, fresh, protocols);
                let id = self.h.send(|c, id, now| c.join_group(id, req, now));
                self.sent_by.insert(id, client);
            }
            Op::Sync {
                client,
                stale,
                partial,
            } => {
                let me = self.clients[client].clone();
                let generation = if stale {
                    me.generation - 1
                } else {
                    me.generation
                };
                // Whoever believes it leads assigns to everyone it knows of.
                let everyone: Vec<String> = if partial {
                    vec![me.member_id.clone()]
                } else {
                    self.h
                        .c
                        .group(GROUP)
                        .map(|g| g.members().iter().map(|m| m.id().to_string()).collect())
                        .unwrap_or_default()
                };
                let assignments: Vec<(&str, &'static [u8])> =
                    everyone.iter().map(|m| (m.as_str(), &b"x"[..])).collect();
                let id = self.h.sync(GROUP, &me.member_id, generation, &assignments);
                self.sent_by.insert(id, client);
            }
            Op::Heartbeat { client, stale } => {
                let me = self.clients[client].clone();
                let req = HeartbeatRequest {
                    group_id: GROUP.into(),
                    generation_id: if stale {
                        me.generation + 1
                    } else {
                        me.generation
                    },
                    member_id: me.member_id,
                    group_instance_id: (client == 0).then(|| "static-0".to_string()),
                };
                let id = self.h.send(|c, id, now| c.heartbeat(id, req, now));
                self.sent_by.insert(id, client);
            }
            Op::Leave { client } => {
                let req = LeaveGroupRequest {
                    group_id: GROUP.into(),
                    members: vec![LeavingMember {
                        member_id: self.clients[client].member_id.clone(),
                        group_instance_id: (client == 0).then(|| "static-0".to_string()),
                        reason: None,
                    }],
                };
                let id = self.h.send(|c, id, now| c.leave_group(id, req, now));
                self.sent_by.insert(id, client);
                self.clients[client] = Client::default();
            }
            Op::Commit { client, simple } => {
                let me = self.clients[client].clone();
                let req = if simple {
                    commit_req(GROUP, -1, "", &[("t", 0, 1)])
                } else {
                    commit_req(
                        GROUP,
                        me.generation,
                        &me.member_id,
                        &[("t", client as i32, 5)],
                    )
                };
                let id = self.h.send(|c, id, now| c.offset_commit(id, req, now));
                self.sent_by.insert(id, client);
            }
            Op::Tick { ms } => self.h.advance(ms),
        }
        self.learn();
        self.check();
    }

    /// Feeds new answers to the clients that asked, as a real client would react.
    fn learn(&mut self) {
        let new: Vec<RequestId> = self
            .h
            .answers
            .keys()
            .filter(|id| !self.seen.contains(id))
            .copied()
            .collect();
        for id in new {
            self.seen.insert(id);
            let Some(&client) = self.sent_by.get(&id) else {
                continue;
            };
            let c = &mut self.clients[client];
            match &self.h.answers[&id] {
                Response::JoinGroup(r) => match r.error {
                    ErrorCode::None => {
                        c.member_id = r.member_id.clone();
                        c.generation = r.generation_id;
                    }
                    ErrorCode::MemberIdRequired => c.member_id = r.member_id.clone(),
                    ErrorCode::UnknownMemberId | ErrorCode::FencedInstanceId => {
                        *c = Client::default()
                    }
                    _ => {}
                },
                Response::Heartbeat(r) if r.error == ErrorCode::UnknownMemberId => {
                    *c = Client::default()
                }
                _ => {}
            }
        }
    }

    fn check(&mut self) {
        let Some(g) = self.h.c.group(GROUP) else {
            self.generation = None;
            return;
        };
        if let Some(previous) = self.generation {
            assert!(g.generation_id() >= previous, "generation went back");
        }
        self.generation = Some(g.generation_id());
        check_group(g);
    }
}

/// The invariants of one group.
fn check_group(g: &Group) {
    let members = g.members();
    for m in &members {
        if m.is_awaiting_join() {
            assert_eq!(g.state(), GroupState::PreparingRebalance, "parked join");
        }
        if m.is_awaiting_sync() {
            assert_eq!(g.state(), GroupState::CompletingRebalance, "parked sync");
        }
        if g.state() == GroupState::Stable {
            assert!(m.assignment().is_some(), "Stable member without assignment");
        }
        if let Some(instance) = m.group_instance_id() {
            assert_eq!(g.static_member(instance), Some(m.id()));
        }
    }
    match g.leader_id() {
        Some(leader) => assert!(g.member(leader).is_some(), "leader is not a member"),
        None => assert!(members.is_empty(), "members without a leader"),
    }
    match g.state() {
        GroupState::Empty => assert!(members.is_empty()),
        GroupState::CompletingRebalance | GroupState::Stable => {
            assert!(!members.is_empty());
            let protocol = g.protocol_name().expect("a generation has a protocol");
            assert!(members.iter().all(|m| m.metadata(protocol).is_some()));
        }
        GroupState::PreparingRebalance => {}
        GroupState::Dead => panic!("a Dead group is kept"),
    }
    if !members.is_empty() {
        assert!(g.protocol_type().is_some());
    }
    assert!(g.pending_sync.iter().all(|m| g.member(m).is_some()));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_interleavings_keep_the_invariants(ops in prop::collection::vec(op(), 1..80)) {
        let mut model = Model::new();
        for op in &ops {
            model.apply(op);
        }
        // Time passing answers everything still parked: rebalances end by their timeout,
        // sessions and the new-member timeout run out.
        for _ in 0..40 {
            model.h.advance(15_000);
            model.learn();
            model.check();
        }
        prop_assert!(
            model.h.outstanding.is_empty(),
            "unanswered: {:?}",
            model.h.outstanding
        );
    }
}
