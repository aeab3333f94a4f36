//! When each group next needs `tick`: an index from deadline to group, so a tick only
//! visits groups with something due instead of every group.

use std::collections::{BTreeSet, HashMap};

/// One entry per group with a deadline: the earliest time it needs attention.
#[derive(Debug, Default, Clone)]
pub(crate) struct Timers {
    queue: BTreeSet<(i64, String)>,
    by_group: HashMap<String, i64>,
}

impl Timers {
    /// Sets (or clears, with `None`) the group's next deadline.
    pub(crate) fn schedule(&mut self, group: &str, at: Option<i64>) {
        let current = self.by_group.get(group).copied();
        if current == at {
            return;
        }
        if let Some(old) = current {
            self.queue.remove(&(old, group.to_string()));
            self.by_group.remove(group);
        }
        if let Some(at) = at {
            self.queue.insert((at, group.to_string()));
            self.by_group.insert(group.to_string(), at);
        }
    }

    /// Removes and returns the groups due at `now`, earliest first.
    pub(crate) fn pop_due(&mut self, now: i64) -> Vec<String> {
        let mut due = Vec::new();
        while let Some((at, _)) = self.queue.first() {
            if *at > now {
                break;
            }
            if let Some((_, group)) = self.queue.pop_first() {
                self.by_group.remove(&group);
                due.push(group);
            }
        }
        due
    }

    /// The earliest deadline of any group.
    pub(crate) fn next(&self) -> Option<i64> {
        self.queue.first().map(|(at, _)| *at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_due_groups_in_deadline_order() {
        let mut t = Timers::default();
        t.schedule("b", Some(20));
        t.schedule("a", Some(10));
        t.schedule("c", Some(30));
        assert_eq!(t.next(), Some(10));
        assert_eq!(t.pop_due(20), ["a", "b"]);
        assert_eq!(t.pop_due(20), Vec::<String>::new());
        assert_eq!(t.next(), Some(30));
    }

    #[test]
    fn rescheduling_replaces_and_none_clears() {
        let mut t = Timers::default();
        t.schedule("a", Some(10));
        t.schedule("a", Some(50));
        assert_eq!(t.pop_due(40), Vec::<String>::new());
        t.schedule("a", None);
        assert_eq!(t.next(), None);
        assert_eq!(t.pop_due(100), Vec::<String>::new());
    }
}
