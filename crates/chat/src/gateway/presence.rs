//! Presence changes coalesced per guild: what changed within one flush interval leaves as one
//! dispatch per guild, each user once with their latest status. Sans-IO; the app flushes it on a
//! timer. A storm of identifies (every user coming online at once) then costs one event per guild
//! per interval instead of one per user per session.

use super::protocol::Status;
use crate::id::Id;
use std::collections::HashMap;

#[derive(Debug, Default)]
pub struct PresenceBatch {
    /// Per guild: users in the order they first changed, and their latest status.
    pending: HashMap<Id, (Vec<Id>, HashMap<Id, Status>)>,
}

impl PresenceBatch {
    pub fn push(&mut self, user: Id, status: Status, guilds: &[Id]) {
        for g in guilds {
            let (order, latest) = self.pending.entry(*g).or_default();
            if latest.insert(user, status).is_none() {
                order.push(user);
            }
        }
    }

    /// Everything pending, per guild, in first-change order; the batch is empty after.
    pub fn drain(&mut self) -> Vec<(Id, Vec<(Id, Status)>)> {
        let mut out: Vec<(Id, Vec<(Id, Status)>)> = self
            .pending
            .drain()
            .map(|(g, (order, latest))| (g, order.into_iter().filter_map(|u| Some((u, *latest.get(&u)?))).collect()))
            .collect();
        out.sort_unstable_by_key(|(g, _)| *g);
        out
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_status_once_per_user_per_guild() {
        let mut b = PresenceBatch::default();
        b.push(Id(1), Status::Online, &[Id(10), Id(20)]);
        b.push(Id(2), Status::Online, &[Id(10)]);
        b.push(Id(1), Status::Offline, &[Id(10), Id(20)]);
        b.push(Id(1), Status::Online, &[Id(10), Id(20)]);
        let out = b.drain();
        assert_eq!(
            out,
            vec![
                (Id(10), vec![(Id(1), Status::Online), (Id(2), Status::Online)]),
                (Id(20), vec![(Id(1), Status::Online)]),
            ]
        );
        assert!(b.is_empty() && b.drain().is_empty());
    }
}
