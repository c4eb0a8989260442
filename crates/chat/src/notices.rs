//! The changes one node makes to its own state and every node of a cluster must make too
//! ([`Notice`]): applied here at once, announced through the broker, applied by the other nodes
//! when their subscriber hands them to [`App::apply`]. Also presence over the cluster and the
//! voice and stream states other nodes report.

use crate::app::App;
use crate::gateway::broker::{Forget, Notice};
use crate::gateway::hub::Topic;
use crate::gateway::protocol::{CloseCode, Event, Status};
use crate::id::Id;
use std::sync::Arc;
use std::time::Instant;

impl App {
    /// Applies `n` here and announces it to the other nodes. With an ordered broker, topic changes
    /// are applied when read back from it, here as everywhere, in the stream's order.
    pub fn tell(&self, n: Notice) {
        let later = self.broker.ordered() && matches!(n, Notice::Join { .. } | Notice::Leave { .. });
        if !later {
            self.apply(&n);
        }
        self.broker.announce(&n);
    }

    /// Applies a change announced by this node or another one.
    pub fn apply(&self, n: &Notice) {
        self.apply_at(n, None)
    }

    /// Applies a change read from a cluster's stream at position `pos`.
    pub fn apply_at(&self, n: &Notice, pos: Option<u64>) {
        match n {
            Notice::Revoked(r) => {
                self.login_watch().revoked(&r.login, Instant::now());
                self.caches.forget_login(&r.login);
                for gone in self.hub.revoke(&r.login) {
                    self.publish_presence(gone.user, Status::Offline, &gone.guilds);
                }
                // No subscriber is not an error.
                let _ = self.revocations.send(r.clone());
            }
            Notice::Ejected(e) => {
                let _ = self.ejections.send(e.clone());
            }
            Notice::Join { user, topic, first } => {
                self.hub.join_topic(*user, *topic, first.as_ref(), pos, Instant::now())
            }
            Notice::Leave { user, topic } => self.hub.leave_topic(*user, *topic),
            Notice::Forget(f) => match *f {
                Forget::Channel(c) => self.caches.forget_channel(c),
                Forget::Member(g, u) => self.caches.forget_member(g, u),
                Forget::Guild(g) => self.caches.forget_guild(g),
            },
            // Only other nodes' presence is kept: see `remote_presence`.
            Notice::Presence { .. } => {}
            Notice::Moved { session } => {
                if let Some(gone) = self.hub.moved_away(session) {
                    self.publish_presence(gone.user, Status::Offline, &gone.guilds);
                }
            }
            Notice::Resync => {
                // Lost notices may have been revocations or invalidations: read everything again.
                self.caches.clear();
                let gone = self.hub.end_all(CloseCode::SessionTimedOut);
                tracing::warn!(sessions = gone.len(), "dispatches were lost: every session here starts afresh");
                for g in gone {
                    self.publish_presence(g.user, Status::Offline, &g.guilds);
                }
            }
        }
    }

    /// Every session of `user`, on every node, joins `topic`, `first` being the first dispatch
    /// each sees of it.
    pub fn join_topic(&self, user: Id, topic: Topic, first: Option<Arc<Event>>) {
        self.tell(Notice::Join { user, topic, first });
    }

    /// Every session of `user`, on every node, leaves `topic`.
    pub fn leave_topic(&self, user: Id, topic: Topic) {
        self.tell(Notice::Leave { user, topic });
    }

    /// Drops cached data that changed, on every node.
    pub fn forget(&self, f: Forget) {
        self.tell(Notice::Forget(f));
    }

    /// A user's status over the cluster: this node's sessions first, then the others'.
    pub fn status(&self, user: Id) -> Status {
        match self.hub.status(user) {
            Status::Offline => self.roster.lock().unwrap_or_else(|p| p.into_inner()).status(user),
            s => s,
        }
    }

    /// Another node's presence change (`None`: the user has no socket left there).
    pub fn remote_presence(&self, node: &str, user: Id, status: Option<Status>) {
        self.roster.lock().unwrap_or_else(|p| p.into_inner()).set(node, user, status);
    }

    /// Another node's whole presence view (sent when nodes meet, and now and then).
    pub async fn remote_presence_all(&self, node: &str, users: Vec<(Id, Status)>) {
        let gone = self.roster.lock().unwrap_or_else(|p| p.into_inner()).replace(node, users);
        self.offline_unless_elsewhere(gone, false).await;
    }

    /// Users online on this node, with their statuses, for the other nodes.
    pub fn local_presence(&self) -> Vec<(Id, Status)> {
        self.hub.online_users()
    }

    /// A node went silent: its users are offline unless another node has them. `tell`: this node
    /// publishes the changes (one node does, so guilds hear them once).
    pub async fn node_gone(&self, node: &str, tell: bool) {
        let users = self.roster.lock().unwrap_or_else(|p| p.into_inner()).drop_node(node);
        self.offline_unless_elsewhere(users, tell).await;
        // Its voice rooms went with it: nobody is in them any more.
        let left: Vec<(Id, Id)> = {
            let mut from = self.voice_origin.lock().unwrap_or_else(|p| p.into_inner());
            let gone: Vec<(Id, Id)> = from.iter().filter(|(_, n)| *n == node).map(|(k, _)| *k).collect();
            gone.iter().for_each(|k| drop(from.remove(k)));
            gone
        };
        for (guild_id, user_id) in left {
            let state = crate::voice::VoiceState {
                guild_id,
                channel_id: None,
                user_id,
                self_mute: false,
                server_mute: false,
                self_deaf: false,
            };
            self.voice_states.set(&state);
            if tell {
                self.publish(Topic::Guild(guild_id), "VOICE_STATE_UPDATE", &state);
            }
        }
    }

    async fn offline_unless_elsewhere(&self, users: Vec<Id>, tell: bool) {
        if !tell {
            return;
        }
        for user in users.into_iter().filter(|u| self.status(*u) == Status::Offline) {
            match self.store.guilds.guilds_of(user).await {
                Ok(guilds) => {
                    let ids: Vec<Id> = guilds.iter().map(|g| g.id).collect();
                    self.presence.lock().unwrap_or_else(|p| p.into_inner()).push(user, Status::Offline, &ids);
                }
                Err(e) => tracing::warn!(error = %e, "presence of a departed node: guild lookup failed"),
            }
        }
    }

    /// Keeps this node's copy of the voice and stream states other nodes report (`origin`), so
    /// READY and `GET …/stream` here tell the same as there.
    pub fn observe_remote(&self, origin: &str, ev: &Event) {
        match ev.name {
            "VOICE_STATE_UPDATE" => match serde_json::from_str::<crate::voice::VoiceState>(ev.data.get()) {
                Ok(state) => {
                    let mut from = self.voice_origin.lock().unwrap_or_else(|p| p.into_inner());
                    match state.channel_id {
                        Some(_) => from.insert((state.guild_id, state.user_id), origin.to_string()),
                        None => from.remove(&(state.guild_id, state.user_id)),
                    };
                    self.voice_states.set(&state);
                }
                Err(e) => tracing::warn!(error = %e, "a remote voice state did not parse"),
            },
            "STREAM_UPDATE" => match serde_json::from_str(ev.data.get()) {
                Ok(state) => self.stream_states.set_from(Some(origin), &state),
                Err(e) => tracing::warn!(error = %e, "a remote stream state did not parse"),
            },
            _ => {}
        }
    }
}
