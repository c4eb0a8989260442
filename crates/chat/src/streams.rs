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
    /// Each channel's state, and the node ingesting it when that is another node of a cluster.
    by_channel: Mutex<HashMap<Id, (StreamState, Option<String>)>>,
}

impl StreamStates {
    pub fn set(&self, state: &StreamState) {
        self.set_from(None, state);
    }

    /// Records `state` as node `from` reported it (`None`: this node). A stream's origin is the
    /// node that reported it going live (a new `started_at`); a title or visibility change
    /// reported by another node (the owner's PATCH went there) does not move it.
    pub fn set_from(&self, from: Option<&str>, state: &StreamState) {
        let mut map = self.by_channel.lock().unwrap_or_else(|p| p.into_inner());
        let before = map.get(&state.channel_id);
        let went_live = state.state == StreamPhase::Live
            && before.is_none_or(|(b, _)| b.state != StreamPhase::Live || b.started_at != state.started_at);
        let origin = match (went_live, before) {
            (true, _) | (_, None) => from.map(str::to_string),
            (false, Some((_, o))) => o.clone(),
        };
        map.insert(state.channel_id, (state.clone(), origin));
    }

    pub fn get(&self, channel: Id) -> Option<StreamState> {
        self.by_channel.lock().unwrap_or_else(|p| p.into_inner()).get(&channel).map(|(s, _)| s.clone())
    }

    /// The node ingesting `channel`'s stream, when it is another node of a cluster.
    pub fn origin(&self, channel: Id) -> Option<String> {
        self.by_channel.lock().unwrap_or_else(|p| p.into_inner()).get(&channel).and_then(|(_, o)| o.clone())
    }

    /// Whether `channel`'s stream is public, as far as the states known in memory say.
    pub fn is_public(&self, channel: Id) -> bool {
        self.by_channel.lock().unwrap_or_else(|p| p.into_inner()).get(&channel).is_some_and(|(s, _)| s.public)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_origin_is_the_node_that_went_live_not_one_that_edited_the_title() {
        let states = StreamStates::default();
        let mut s = StreamState::idle(Id(1), Id(2));
        states.set_from(Some("c"), &s);
        (s.state, s.started_at) = (StreamPhase::Live, Some(10));
        states.set_from(Some("a"), &s);
        assert_eq!(states.origin(Id(2)).as_deref(), Some("a"));
        s.title = "renamed on c".into();
        states.set_from(Some("c"), &s);
        assert_eq!(states.origin(Id(2)).as_deref(), Some("a"));
        assert_eq!(states.get(Id(2)).unwrap().title, "renamed on c");
        // Published again, here this time.
        s.started_at = Some(20);
        states.set(&s);
        assert_eq!(states.origin(Id(2)), None);
    }
}
