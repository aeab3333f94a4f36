//! A member of a classic consumer group: JoinGroup (with Kafka's two-step member id),
//! the range assignor when elected leader, SyncGroup, heartbeats in the background, and
//! offset commits under the member's generation.
//!
//! The caller drives it: fetch the assigned partitions, commit, and when
//! [`GroupConsumer::needs_rejoin`] says the group is rebalancing, commit what was
//! consumed and call [`GroupConsumer::rejoin`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    GroupId, HeartbeatRequest, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    SyncGroupRequest,
};
use kafka_protocol::protocol::StrBytes;
use strom_wire::ErrorCode;

use crate::Client;
use crate::consumer_protocol::{
    CONSUMER_PROTOCOL_TYPE, decode_assignment, decode_subscription, encode_assignment,
    encode_subscription, range_assign,
};
use crate::error::ClientError;

/// The one assignor Strom's consumer offers.
pub const RANGE_ASSIGNOR: &str = "range";

/// Timeouts of a group member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupConfig {
    /// Without a heartbeat for this long the coordinator drops the member.
    pub session_timeout: Duration,
    /// How long the coordinator waits for members to rejoin in a rebalance.
    pub rebalance_timeout: Duration,
    pub heartbeat_interval: Duration,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            session_timeout: Duration::from_secs(10),
            rebalance_timeout: Duration::from_secs(20),
            heartbeat_interval: Duration::from_secs(3),
        }
    }
}

/// A joined member of a consumer group.
#[derive(Debug)]
pub struct GroupConsumer {
    client: Client,
    group: String,
    topics: Vec<String>,
    config: GroupConfig,
    member_id: String,
    generation: i32,
    /// Partitions per topic this member owns in the current generation.
    assignment: BTreeMap<String, Vec<i32>>,
    /// Set by the heartbeat task when the coordinator says the group is rebalancing or
    /// no longer knows this member.
    rejoin_needed: Arc<AtomicBool>,
    heartbeat: Option<tokio::task::JoinHandle<()>>,
}

impl GroupConsumer {
    /// Joins `group` subscribed to `topics` and waits for this member's assignment.
    pub async fn join(
        client: Client,
        group: &str,
        topics: Vec<String>,
        config: GroupConfig,
    ) -> Result<GroupConsumer, ClientError> {
        let mut c = GroupConsumer {
            client,
            group: group.to_owned(),
            topics,
            config,
            member_id: String::new(),
            generation: -1,
            assignment: BTreeMap::new(),
            rejoin_needed: Arc::new(AtomicBool::new(false)),
            heartbeat: None,
        };
        c.rejoin().await?;
        Ok(c)
    }

    pub fn assignment(&self) -> &BTreeMap<String, Vec<i32>> {
        &self.assignment
    }

    pub fn member_id(&self) -> &str {
        &self.member_id
    }

    pub fn generation(&self) -> i32 {
        self.generation
    }

    /// Whether the group is rebalancing and this member must [`GroupConsumer::rejoin`].
    pub fn needs_rejoin(&self) -> bool {
        self.rejoin_needed.load(Ordering::Relaxed)
    }

    /// Runs JoinGroup and SyncGroup until this member has an assignment for a stable
    /// generation, then (re)starts heartbeats.
    pub async fn rejoin(&mut self) -> Result<(), ClientError> {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
        for _ in 0..20 {
            let join = self.join_group().await?;
            match ErrorCode::from_code(join.error_code) {
                Some(ErrorCode::MemberIdRequired) => {
                    self.member_id = join.member_id.to_string();
                    continue;
                }
                Some(ErrorCode::UnknownMemberId) => {
                    self.member_id.clear();
                    continue;
                }
                Some(ErrorCode::RebalanceInProgress) => continue,
                _ => {}
            }
            ClientError::check(join.error_code, None, || {
                format!("join group {}", self.group)
            })?;
            self.member_id = join.member_id.to_string();
            self.generation = join.generation_id;
            let assignments = if join.leader == join.member_id {
                self.assign(&join).await?
            } else {
                Vec::new()
            };
            let (code, bytes) = self.sync_group(assignments).await?;
            match ErrorCode::from_code(code) {
                Some(ErrorCode::RebalanceInProgress | ErrorCode::IllegalGeneration) => continue,
                Some(ErrorCode::UnknownMemberId) => {
                    self.member_id.clear();
                    continue;
                }
                _ => {}
            }
            ClientError::check(code, None, || format!("sync group {}", self.group))?;
            self.assignment = decode_assignment(&bytes)?;
            self.rejoin_needed.store(false, Ordering::Relaxed);
            self.start_heartbeat();
            return Ok(());
        }
        Err(ClientError::Protocol(format!(
            "group {} kept rebalancing",
            self.group
        )))
    }

    /// The committed offsets of this member's partitions (none yet: absent).
    pub async fn committed(&self) -> Result<BTreeMap<String, BTreeMap<i32, i64>>, ClientError> {
        let all = self.client.committed_offsets(&self.group).await?;
        Ok(all
            .into_iter()
            .filter_map(|(t, ps)| {
                let mine = self.assignment.get(&t)?;
                let ps: BTreeMap<i32, i64> =
                    ps.into_iter().filter(|(p, _)| mine.contains(p)).collect();
                Some((t, ps))
            })
            .collect())
    }

    /// Commits `offsets` (the next offset to consume, per topic and partition) under this
    /// member's generation.
    pub async fn commit(
        &self,
        offsets: &BTreeMap<String, BTreeMap<i32, i64>>,
    ) -> Result<(), ClientError> {
        if offsets.values().all(BTreeMap::is_empty) {
            return Ok(());
        }
        self.client
            .commit_offsets(&self.group, self.generation, &self.member_id, offsets)
            .await
    }

    /// Leaves the group, so that the others rebalance at once instead of after the
    /// session timeout.
    pub async fn leave(mut self) -> Result<(), ClientError> {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
        let group = self.group.clone();
        let member = self.member_id.clone();
        self.client
            .with_coordinator(&group, |conn| {
                let (group, member) = (group.clone(), member.clone());
                async move {
                    let version = conn.version::<LeaveGroupRequest>()?;
                    let mut req = LeaveGroupRequest::default()
                        .with_group_id(GroupId(StrBytes::from_string(group.clone())));
                    if version >= 3 {
                        req.members = vec![
                            MemberIdentity::default().with_member_id(StrBytes::from_string(member)),
                        ];
                    } else {
                        req.member_id = StrBytes::from_string(member);
                    }
                    let resp = conn.send(&req, version).await?;
                    ClientError::check(resp.error_code, None, || format!("leave group {group}"))
                }
            })
            .await
    }

    async fn join_group(&self) -> Result<JoinGroupResponse, ClientError> {
        let req = JoinGroupRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(self.group.clone())))
            .with_session_timeout_ms(self.config.session_timeout.as_millis() as i32)
            .with_rebalance_timeout_ms(self.config.rebalance_timeout.as_millis() as i32)
            .with_member_id(StrBytes::from_string(self.member_id.clone()))
            .with_protocol_type(StrBytes::from_static_str(CONSUMER_PROTOCOL_TYPE))
            .with_protocols(vec![
                JoinGroupRequestProtocol::default()
                    .with_name(StrBytes::from_static_str(RANGE_ASSIGNOR))
                    .with_metadata(encode_subscription(&self.topics)),
            ]);
        self.client
            .with_coordinator(&self.group, |conn| {
                let req = req.clone();
                async move {
                    let version = conn.version::<JoinGroupRequest>()?;
                    let resp = conn.send(&req, version).await?;
                    // Coordinator moves are retried by with_coordinator; group-level
                    // answers are for rejoin to act on.
                    if crate::error::is_retriable_code(resp.error_code) {
                        ClientError::check(resp.error_code, None, || "join group".into())?;
                    }
                    Ok(resp)
                }
            })
            .await
    }

    /// As the leader: the range assignment of every member's subscription.
    async fn assign(
        &self,
        join: &JoinGroupResponse,
    ) -> Result<Vec<SyncGroupRequestAssignment>, ClientError> {
        let mut subscriptions = BTreeMap::new();
        for m in &join.members {
            subscriptions.insert(m.member_id.to_string(), decode_subscription(&m.metadata)?);
        }
        let mut counts = BTreeMap::new();
        for topics in subscriptions.values() {
            for t in topics {
                if !counts.contains_key(t) {
                    self.client.invalidate_topic(t);
                    match self.client.topic_info(t).await {
                        Ok((n, _)) => {
                            counts.insert(t.clone(), n as i32);
                        }
                        // A subscribed topic that does not exist gets no partitions.
                        Err(ClientError::UnknownTopic(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        Ok(range_assign(&subscriptions, &counts)
            .into_iter()
            .map(|(member, a)| {
                SyncGroupRequestAssignment::default()
                    .with_member_id(StrBytes::from_string(member))
                    .with_assignment(encode_assignment(&a))
            })
            .collect())
    }

    async fn sync_group(
        &self,
        assignments: Vec<SyncGroupRequestAssignment>,
    ) -> Result<(i16, bytes::Bytes), ClientError> {
        let req = SyncGroupRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(self.group.clone())))
            .with_generation_id(self.generation)
            .with_member_id(StrBytes::from_string(self.member_id.clone()))
            .with_protocol_type(Some(StrBytes::from_static_str(CONSUMER_PROTOCOL_TYPE)))
            .with_protocol_name(Some(StrBytes::from_static_str(RANGE_ASSIGNOR)))
            .with_assignments(assignments);
        self.client
            .with_coordinator(&self.group, |conn| {
                let req = req.clone();
                async move {
                    let version = conn.version::<SyncGroupRequest>()?;
                    let resp = conn.send(&req, version).await?;
                    if crate::error::is_retriable_code(resp.error_code) {
                        ClientError::check(resp.error_code, None, || "sync group".into())?;
                    }
                    Ok((resp.error_code, resp.assignment))
                }
            })
            .await
    }

    fn start_heartbeat(&mut self) {
        let client = self.client.clone();
        let req = HeartbeatRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(self.group.clone())))
            .with_generation_id(self.generation)
            .with_member_id(StrBytes::from_string(self.member_id.clone()));
        let group = self.group.clone();
        let flag = self.rejoin_needed.clone();
        let interval = self.config.heartbeat_interval;
        self.heartbeat = Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let result = client
                    .with_coordinator(&group, |conn| {
                        let req = req.clone();
                        async move {
                            let version = conn.version::<HeartbeatRequest>()?;
                            let resp = conn.send(&req, version).await?;
                            if crate::error::is_retriable_code(resp.error_code) {
                                ClientError::check(resp.error_code, None, || "heartbeat".into())?;
                            }
                            Ok(resp.error_code)
                        }
                    })
                    .await;
                match result {
                    Ok(0) => {}
                    Ok(code) => {
                        tracing::debug!(group, code, "heartbeat: rejoin needed");
                        flag.store(true, Ordering::Relaxed);
                        return;
                    }
                    Err(e) => tracing::debug!(group, error = %e, "heartbeat failed"),
                }
            }
        }));
    }
}

impl Drop for GroupConsumer {
    fn drop(&mut self) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
    }
}
