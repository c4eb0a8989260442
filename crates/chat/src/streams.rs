//! Stream states: whether a live channel is idle, live or ended, since when, and where its
//! playlist is, as the watch page shows it. The live engine reports changes here; the chat
//! gateway dispatches STREAM_UPDATE to the guild. Only facts about the channel live here, nothing
//! of media.

use crate::id::Id;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamPhase {
    /// Nothing published yet (or since the server started).
    Idle,
    /// Publishing, and the first part is playable.
    Live,
    /// The publisher stopped; the playlist says EXT-X-ENDLIST.
    Ended,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamState {
    pub guild_id: Id,
    pub channel_id: Id,
    pub state: StreamPhase,
    /// Unix ms when the current (or last) stream went live.
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
    /// The master playlist, relative to the server (`/live/{channel_id}/index.m3u8`).
    pub playlist: Option<String>,
    /// The renditions' names, best first.
    pub renditions: Vec<String>,
    /// Set by the owner: the title, and whether anyone may watch (not only members).
    pub title: String,
    pub public: bool,
    /// Players watching now (each counted once, while it keeps fetching).
    pub viewer_count: u64,
}

impl StreamState {
    pub fn idle(guild_id: Id, channel_id: Id) -> StreamState {
        StreamState {
            guild_id,
            channel_id,
            state: StreamPhase::Idle,
            started_at: None,
            ended_at: None,
            playlist: None,
            renditions: Vec::new(),
            title: String::new(),
            public: false,
            viewer_count: 0,
        }
    }
}

/// Current stream states per live channel.
#[derive(Debug, Default)]
pub struct StreamStates {
    by_channel: Mutex<HashMap<Id, StreamState>>,
}

impl StreamStates {
    pub fn set(&self, state: &StreamState) {
        self.by_channel.lock().unwrap_or_else(|p| p.into_inner()).insert(state.channel_id, state.clone());
    }

    pub fn get(&self, channel: Id) -> Option<StreamState> {
        self.by_channel.lock().unwrap_or_else(|p| p.into_inner()).get(&channel).cloned()
    }

    /// Whether `channel`'s stream is public, as far as the states known in memory say.
    pub fn is_public(&self, channel: Id) -> bool {
        self.by_channel.lock().unwrap_or_else(|p| p.into_inner()).get(&channel).is_some_and(|s| s.public)
    }
}
