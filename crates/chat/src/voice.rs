//! Voice states: who is in which voice channel, muted or not, as Discord's member list shows it.
//! The voice gateway reports joins, changes and leaves here; the chat gateway dispatches
//! VOICE_STATE_UPDATE to the guild and includes the current states in READY. Only the fact of
//! presence lives here, nothing of media.

use crate::id::Id;
use serde::{Deserialize, Serialize};

/// Where a voice room is served. One process serves every room at `/voice`; a cluster places each
/// room on a media node and hands out that node's voice gateway.
#[async_trait::async_trait]
pub trait VoicePlacer: Send + Sync {
    /// The voice gateway URL for `room`: `/voice` on this node, or `ws(s)://…/voice` of another.
    async fn endpoint(&self, room: Id) -> Result<String, String>;
}
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoiceState {
    pub guild_id: Id,
    /// `None` once the user left voice.
    pub channel_id: Option<Id>,
    pub user_id: Id,
    pub self_mute: bool,
    pub server_mute: bool,
    /// Deafened themselves (hears nobody).
    pub self_deaf: bool,
}

/// Current voice states per guild.
#[derive(Debug, Default)]
pub struct VoiceStates {
    by_guild: Mutex<HashMap<Id, HashMap<Id, VoiceState>>>,
}

impl VoiceStates {
    /// Records `state` (a leave when `channel_id` is `None`).
    pub fn set(&self, state: &VoiceState) {
        let mut map = self.by_guild.lock().unwrap_or_else(|p| p.into_inner());
        let guild = map.entry(state.guild_id).or_default();
        match state.channel_id {
            Some(_) => {
                guild.insert(state.user_id, state.clone());
            }
            None => {
                guild.remove(&state.user_id);
            }
        }
        if guild.is_empty() {
            map.remove(&state.guild_id);
        }
    }

    pub fn of_guild(&self, guild: Id) -> Vec<VoiceState> {
        let map = self.by_guild.lock().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<VoiceState> = map.get(&guild).map(|g| g.values().cloned().collect()).unwrap_or_default();
        v.sort_by_key(|s| s.user_id);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_update_leave() {
        let vs = VoiceStates::default();
        let mut s = VoiceState {
            guild_id: Id(1),
            channel_id: Some(Id(2)),
            user_id: Id(3),
            self_mute: false,
            server_mute: false,
            self_deaf: false,
        };
        vs.set(&s);
        s.self_mute = true;
        vs.set(&s);
        assert_eq!(vs.of_guild(Id(1)), vec![s.clone()]);
        s.channel_id = None;
        vs.set(&s);
        assert!(vs.of_guild(Id(1)).is_empty());
    }
}
