//! `Client`: the bootstrap and routing layer. It keeps one [`Connection`] per broker,
//! a cache of the cluster's metadata (brokers, partition leaders) and of group
//! coordinators, and retries an operation on another broker after a metadata refresh
//! when leadership or coordination moved (NOT_LEADER_OR_FOLLOWER, LEADER_NOT_AVAILABLE,
//! NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE) or a connection broke.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::messages::{
    BrokerId, FindCoordinatorRequest, MetadataRequest, MetadataResponse, TopicName,
    metadata_request::MetadataRequestTopic,
};
use kafka_protocol::protocol::StrBytes;

use crate::connection::Connection;
use crate::error::ClientError;
use crate::metadata::{BrokerInfo, Metadata};

/// How a [`Client`] connects and how patient it is.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `host:port` of one or more brokers to learn the cluster from.
    pub bootstrap: Vec<String>,
    /// Sent in every request header.
    pub client_id: String,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// Attempts of an operation whose leader or coordinator moved.
    pub retries: u32,
    /// Pause before the first retry; doubled for each further one.
    pub retry_backoff: Duration,
}

impl ClientConfig {
    pub fn new(bootstrap: &str) -> Self {
        ClientConfig {
            bootstrap: bootstrap
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            client_id: "strom".to_owned(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            retries: 6,
            retry_backoff: Duration::from_millis(100),
        }
    }
}

/// A handle to a cluster; cheap to clone and share between tasks.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

/// FindCoordinator's key types.
const KEY_GROUP: i8 = 0;
const KEY_TRANSACTION: i8 = 1;

#[derive(Debug)]
struct Inner {
    config: ClientConfig,
    /// One connection per broker address, made on first use and replaced when broken.
    connections: tokio::sync::Mutex<HashMap<String, Arc<Connection>>>,
    /// The newest metadata answer, merged per topic.
    cache: Mutex<Cache>,
}

#[derive(Debug, Default)]
struct Cache {
    brokers: BTreeMap<i32, BrokerInfo>,
    /// Leader node of each known partition, by topic.
    leaders: HashMap<String, HashMap<i32, i32>>,
    /// Partition count and topic id of each known topic.
    topics: HashMap<String, (usize, uuid::Uuid)>,
    /// Coordinators by (key type: 0 group, 1 transaction; key).
    coordinators: HashMap<(i8, String), i32>,
}

impl Client {
    /// Connects to the first reachable bootstrap broker and loads the cluster's brokers.
    pub async fn connect(config: ClientConfig) -> Result<Client, ClientError> {
        if config.bootstrap.is_empty() {
            return Err(ClientError::Invalid("no bootstrap broker given".into()));
        }
        let client = Client {
            inner: Arc::new(Inner {
                config,
                connections: tokio::sync::Mutex::new(HashMap::new()),
                cache: Mutex::new(Cache::default()),
            }),
        };
        client.metadata(Some(&[]), false).await?;
        Ok(client)
    }

    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// The connection to `addr`, made if there is none or the old one broke.
    pub async fn connection_to(&self, addr: &str) -> Result<Arc<Connection>, ClientError> {
        let mut conns = self.inner.connections.lock().await;
        if let Some(c) = conns.get(addr).filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        let cfg = &self.inner.config;
        let c = Arc::new(
            Connection::connect(
                addr,
                &cfg.client_id,
                cfg.connect_timeout,
                cfg.request_timeout,
            )
            .await?,
        );
        conns.insert(addr.to_owned(), c.clone());
        Ok(c)
    }

    /// The connection to broker `node_id` (known from metadata).
    pub async fn broker(&self, node_id: i32) -> Result<Arc<Connection>, ClientError> {
        let addr = self
            .inner
            .cache
            .lock()
            .unwrap()
            .brokers
            .get(&node_id)
            .map(BrokerInfo::addr);
        match addr {
            Some(a) => self.connection_to(&a).await,
            None => {
                self.metadata(Some(&[]), false).await?;
                let addr = self
                    .inner
                    .cache
                    .lock()
                    .unwrap()
                    .brokers
                    .get(&node_id)
                    .map(BrokerInfo::addr);
                let addr = addr.ok_or_else(|| {
                    ClientError::Protocol(format!("broker {node_id} is not in the metadata"))
                })?;
                self.connection_to(&addr).await
            }
        }
    }

    /// A connection to any broker: a known one first, then the bootstrap list.
    pub async fn any_broker(&self) -> Result<Arc<Connection>, ClientError> {
        let known: Vec<String> = self
            .inner
            .cache
            .lock()
            .unwrap()
            .brokers
            .values()
            .map(BrokerInfo::addr)
            .collect();
        let mut last = None;
        for addr in known.iter().chain(self.inner.config.bootstrap.iter()) {
            match self.connection_to(addr).await {
                Ok(c) => return Ok(c),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| ClientError::Invalid("no broker known".into())))
    }

    /// Metadata for `topics` (`None`: every topic), updating the cache. With
    /// `auto_create` the broker may create missing topics.
    pub async fn metadata(
        &self,
        topics: Option<&[&str]>,
        auto_create: bool,
    ) -> Result<Metadata, ClientError> {
        let conn = self.any_broker().await?;
        let version = conn.version::<MetadataRequest>()?;
        let req = MetadataRequest::default()
            .with_topics(topics.map(|ts| {
                ts.iter()
                    .map(|t| {
                        MetadataRequestTopic::default()
                            .with_name(Some(TopicName(StrBytes::from_string((*t).to_owned()))))
                    })
                    .collect()
            }))
            .with_allow_auto_topic_creation(auto_create);
        let resp: MetadataResponse = conn.send(&req, version).await?;
        let meta = Metadata::from_response(resp);
        self.remember(&meta);
        Ok(meta)
    }

    fn remember(&self, meta: &Metadata) {
        let mut cache = self.inner.cache.lock().unwrap();
        cache.brokers = meta
            .brokers
            .iter()
            .map(|b| (b.node_id, b.clone()))
            .collect();
        for t in &meta.topics {
            cache.leaders.remove(&t.name);
            if t.error_code != 0 {
                cache.topics.remove(&t.name);
                continue;
            }
            cache
                .topics
                .insert(t.name.clone(), (t.partitions.len(), t.topic_id));
            let leaders = t
                .partitions
                .iter()
                .filter(|p| p.leader >= 0)
                .map(|p| (p.partition, p.leader))
                .collect();
            cache.leaders.insert(t.name.clone(), leaders);
        }
    }

    /// Partition count and topic id of `topic`, from the cache or a metadata request.
    pub async fn topic_info(&self, topic: &str) -> Result<(usize, uuid::Uuid), ClientError> {
        if let Some(t) = self.inner.cache.lock().unwrap().topics.get(topic) {
            return Ok(*t);
        }
        let meta = self.metadata(Some(&[topic]), false).await?;
        let t = meta
            .topic(topic)
            .ok_or_else(|| ClientError::UnknownTopic(topic.to_owned()))?;
        if t.error_code == strom_wire::ErrorCode::UnknownTopicOrPartition.code() {
            return Err(ClientError::UnknownTopic(topic.to_owned()));
        }
        ClientError::check(t.error_code, None, || format!("metadata of topic {topic}"))?;
        Ok((t.partitions.len(), t.topic_id))
    }

    /// The partitions of `topic`, 0..n.
    pub async fn partitions(&self, topic: &str) -> Result<Vec<i32>, ClientError> {
        let (n, _) = self.topic_info(topic).await?;
        Ok((0..n as i32).collect())
    }

    /// The node leading `topic`/`partition`, from the cache or a metadata request.
    pub async fn leader(&self, topic: &str, partition: i32) -> Result<i32, ClientError> {
        if let Some(l) = self.cached_leader(topic, partition) {
            return Ok(l);
        }
        let meta = self.metadata(Some(&[topic]), false).await?;
        let t = meta
            .topic(topic)
            .ok_or_else(|| ClientError::UnknownTopic(topic.to_owned()))?;
        if t.error_code == strom_wire::ErrorCode::UnknownTopicOrPartition.code() {
            return Err(ClientError::UnknownTopic(topic.to_owned()));
        }
        ClientError::check(t.error_code, None, || format!("metadata of topic {topic}"))?;
        let p = t
            .partitions
            .iter()
            .find(|p| p.partition == partition)
            .ok_or_else(|| ClientError::UnknownPartition {
                topic: topic.to_owned(),
                partition,
            })?;
        if p.leader < 0 {
            return Err(ClientError::Kafka {
                context: format!("leader of {topic}/{partition}"),
                code: strom_wire::ErrorCode::LeaderNotAvailable.code(),
                message: None,
            });
        }
        Ok(p.leader)
    }

    /// `partitions` of `topic` grouped by their leader's node id, asking the metadata
    /// again (with backoff) while a leader is being elected or moved.
    pub async fn partitions_by_leader(
        &self,
        topic: &str,
        partitions: &[i32],
    ) -> Result<HashMap<i32, Vec<i32>>, ClientError> {
        let mut attempt = 0;
        loop {
            let mut out: HashMap<i32, Vec<i32>> = HashMap::new();
            let mut failed = None;
            // Known leaders in one pass under the cache's lock; the rest one by one.
            let mut unknown = Vec::new();
            {
                let cache = self.inner.cache.lock().unwrap();
                let known = cache.leaders.get(topic);
                for &p in partitions {
                    match known.and_then(|m| m.get(&p)) {
                        Some(&l) => out.entry(l).or_default().push(p),
                        None => unknown.push(p),
                    }
                }
            }
            for p in unknown {
                match self.leader(topic, p).await {
                    Ok(l) => out.entry(l).or_default().push(p),
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            match failed {
                None => return Ok(out),
                Some(e) if e.is_retriable() && attempt < self.inner.config.retries => {
                    self.invalidate_topic(topic);
                    self.backoff(attempt).await;
                    attempt += 1;
                }
                Some(e) => return Err(e),
            }
        }
    }

    fn cached_leader(&self, topic: &str, partition: i32) -> Option<i32> {
        let cache = self.inner.cache.lock().unwrap();
        cache.leaders.get(topic)?.get(&partition).copied()
    }

    /// Forgets what is known about `topic`'s leaders, so the next lookup asks again.
    pub fn invalidate_topic(&self, topic: &str) {
        let mut cache = self.inner.cache.lock().unwrap();
        cache.leaders.remove(topic);
        cache.topics.remove(topic);
    }

    /// Runs `op` against the leader of `topic`/`partition`, finding the leader again and
    /// retrying with backoff when the answer says it moved.
    pub async fn with_leader<T, F, Fut>(
        &self,
        topic: &str,
        partition: i32,
        mut op: F,
    ) -> Result<T, ClientError>
    where
        F: FnMut(Arc<Connection>) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        self.retrying(
            || async move {
                let leader = self.leader(topic, partition).await?;
                self.broker(leader).await
            },
            &mut op,
            |e, attempt| {
                tracing::debug!(topic, partition, error = %e, attempt, "retrying on a new leader");
                self.invalidate_topic(topic);
            },
        )
        .await
    }

    /// The coordinator of `group`, from the cache or FindCoordinator.
    pub async fn coordinator(&self, group: &str) -> Result<Arc<Connection>, ClientError> {
        self.coordinator_of(KEY_GROUP, group).await
    }

    /// The coordinator of a key of `key_type` (0: a group, 1: a transactional id), from
    /// the cache or FindCoordinator.
    async fn coordinator_of(
        &self,
        key_type: i8,
        key: &str,
    ) -> Result<Arc<Connection>, ClientError> {
        let cache_key = (key_type, key.to_owned());
        let cached = self
            .inner
            .cache
            .lock()
            .unwrap()
            .coordinators
            .get(&cache_key)
            .copied();
        if let Some(node) = cached {
            return self.broker(node).await;
        }
        let conn = self.any_broker().await?;
        let version = conn.version::<FindCoordinatorRequest>()?;
        if key_type != KEY_GROUP && version < 1 {
            return Err(ClientError::UnsupportedApi {
                api: "FindCoordinator for transactions",
                broker_min: 0,
                broker_max: 0,
            });
        }
        let name = StrBytes::from_string(key.to_owned());
        let mut req = FindCoordinatorRequest::default().with_key_type(key_type);
        if version >= 4 {
            req.coordinator_keys = vec![name];
        } else {
            req.key = name;
        }
        let resp = conn.send(&req, version).await?;
        let (code, message, node, host, port) = match resp.coordinators.first() {
            Some(c) if version >= 4 => (
                c.error_code,
                c.error_message.clone(),
                c.node_id,
                c.host.clone(),
                c.port,
            ),
            _ => (
                resp.error_code,
                resp.error_message.clone(),
                resp.node_id,
                resp.host.clone(),
                resp.port,
            ),
        };
        let what = if key_type == KEY_GROUP {
            "group"
        } else {
            "transactional id"
        };
        ClientError::check(code, message.as_deref(), || {
            format!("find coordinator of {what} {key}")
        })?;
        let BrokerId(node) = node;
        {
            let mut cache = self.inner.cache.lock().unwrap();
            cache.coordinators.insert(cache_key, node);
            cache.brokers.entry(node).or_insert_with(|| BrokerInfo {
                node_id: node,
                host: host.to_string(),
                port,
                rack: None,
            });
        }
        self.broker(node).await
    }

    /// Runs `op` against `group`'s coordinator, finding it again and retrying with
    /// backoff when the answer says it moved or is not ready.
    pub async fn with_coordinator<T, F, Fut>(&self, group: &str, op: F) -> Result<T, ClientError>
    where
        F: FnMut(Arc<Connection>) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        self.with_coordinator_of(KEY_GROUP, group, op).await
    }

    /// [`with_coordinator`](Self::with_coordinator) for a transactional id's coordinator.
    pub async fn with_txn_coordinator<T, F, Fut>(
        &self,
        transactional_id: &str,
        op: F,
    ) -> Result<T, ClientError>
    where
        F: FnMut(Arc<Connection>) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        self.with_coordinator_of(KEY_TRANSACTION, transactional_id, op)
            .await
    }

    async fn with_coordinator_of<T, F, Fut>(
        &self,
        key_type: i8,
        key: &str,
        mut op: F,
    ) -> Result<T, ClientError>
    where
        F: FnMut(Arc<Connection>) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        self.retrying(
            || self.coordinator_of(key_type, key),
            &mut op,
            |e, attempt| {
                tracing::debug!(key, error = %e, attempt, "retrying on a new coordinator");
                self.inner
                    .cache
                    .lock()
                    .unwrap()
                    .coordinators
                    .remove(&(key_type, key.to_owned()));
            },
        )
        .await
    }

    /// Runs `op` on the connection `find` gives until it succeeds, fails for good, or
    /// the retries run out; before each retry `forget` drops what the failure showed to
    /// be stale, then a backoff.
    async fn retrying<T, Find, FindFut, Op, OpFut>(
        &self,
        mut find: Find,
        op: &mut Op,
        forget: impl Fn(&ClientError, u32),
    ) -> Result<T, ClientError>
    where
        Find: FnMut() -> FindFut,
        FindFut: Future<Output = Result<Arc<Connection>, ClientError>>,
        Op: FnMut(Arc<Connection>) -> OpFut,
        OpFut: Future<Output = Result<T, ClientError>>,
    {
        let mut tries = 0;
        loop {
            let result = match find().await {
                Ok(conn) => op(conn).await,
                Err(e) => Err(e),
            };
            match result {
                Err(e) if e.is_retriable() && tries < self.inner.config.retries => {
                    forget(&e, tries);
                    self.backoff(tries).await;
                    tries += 1;
                }
                other => return other,
            }
        }
    }

    pub(crate) async fn backoff(&self, attempt: u32) {
        let pause = self.inner.config.retry_backoff * 2u32.pow(attempt.min(6));
        tokio::time::sleep(pause.min(Duration::from_secs(5))).await;
    }
}
