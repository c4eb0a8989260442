//! Presence held by the other nodes of a cluster (sans-IO): each node's own view of the users with
//! a socket there, as it announced them. A user is online while any node says so; a node that
//! goes silent takes its users' presence with it ([`Roster::drop_node`]).

use super::protocol::Status;
use crate::id::Id;
use std::collections::HashMap;

#[derive(Debug, Default)]
pub struct Roster {
    nodes: HashMap<String, HashMap<Id, Status>>,
}

impl Roster {
    /// One node's change for one user (`None`: no socket of theirs is left there).
    pub fn set(&mut self, node: &str, user: Id, status: Option<Status>) {
        match status {
            Some(s) if s != Status::Offline => {
                self.nodes.entry(node.to_string()).or_default().insert(user, s);
            }
            _ => {
                if let Some(m) = self.nodes.get_mut(node) {
                    m.remove(&user);
                }
            }
        }
    }

    /// A node's whole view, replacing what it said before. Returns the users it no longer has.
    pub fn replace(&mut self, node: &str, users: impl IntoIterator<Item = (Id, Status)>) -> Vec<Id> {
        let new: HashMap<Id, Status> = users.into_iter().filter(|(_, s)| *s != Status::Offline).collect();
        let old = self.nodes.insert(node.to_string(), new).unwrap_or_default();
        let now = &self.nodes[node];
        old.into_keys().filter(|u| !now.contains_key(u)).collect()
    }

    /// A node went silent: the users it had, for the caller to check ([`Roster::status`]).
    pub fn drop_node(&mut self, node: &str) -> Vec<Id> {
        self.nodes.remove(node).map(|m| m.into_keys().collect()).unwrap_or_default()
    }

    /// The user's status on the other nodes (offline when none has them). Online wins over the
    /// other statuses, so a user is never shown away while a node sees them active.
    pub fn status(&self, user: Id) -> Status {
        let mut best = Status::Offline;
        for s in self.nodes.values().filter_map(|m| m.get(&user)) {
            best = match (best, *s) {
                (Status::Online, _) | (_, Status::Online) => Status::Online,
                (Status::Offline, s) => s,
                (b, _) => b,
            };
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn union_over_nodes_and_a_dead_node_takes_its_users() {
        let mut r = Roster::default();
        r.set("a", Id(1), Some(Status::Idle));
        r.set("b", Id(1), Some(Status::Online));
        r.set("b", Id(2), Some(Status::Dnd));
        assert_eq!(r.status(Id(1)), Status::Online);
        assert_eq!(r.status(Id(3)), Status::Offline);
        r.set("b", Id(1), None);
        assert_eq!(r.status(Id(1)), Status::Idle);
        let mut gone = r.drop_node("b");
        gone.sort();
        assert_eq!(gone, vec![Id(2)]);
        assert_eq!(r.status(Id(2)), Status::Offline);
        assert_eq!(r.replace("a", [(Id(5), Status::Online)]), vec![Id(1)]);
        assert_eq!(r.status(Id(1)), Status::Offline);
        assert_eq!(r.status(Id(5)), Status::Online);
    }
}
