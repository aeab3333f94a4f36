//! What a state transition needs besides the group: the settings, the time, where to put
//! records and responses, and the member id generator.

use crate::config::GroupConfig;
use crate::effects::Effects;
use crate::member::generate_member_id;

/// The context of one coordinator call.
#[derive(Debug)]
pub(crate) struct Ctx<'a> {
    pub(crate) config: &'a GroupConfig,
    /// The caller's clock (ms since the epoch): the coordinator has no clock of its own.
    pub(crate) now: i64,
    pub(crate) fx: &'a mut Effects,
    pub(crate) ids: &'a mut MemberIds,
}

impl Ctx<'_> {
    /// `now + ms`, without overflow for absurd timeouts.
    pub(crate) fn after(&self, ms: i64) -> i64 {
        self.now.saturating_add(ms.max(0))
    }
}

/// Hands out member ids: unique within a run by the counter, across runs by the seed.
#[derive(Debug, Clone)]
pub(crate) struct MemberIds {
    seed: u64,
    next: u64,
}

impl MemberIds {
    pub(crate) fn new(seed: u64) -> Self {
        MemberIds { seed, next: 1 }
    }

    pub(crate) fn next(&mut self, prefix: &str) -> String {
        let id = generate_member_id(prefix, self.seed, self.next);
        self.next += 1;
        id
    }
}
