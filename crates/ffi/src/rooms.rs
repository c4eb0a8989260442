//! Rooms, join tokens, participants and stats: thin wrappers over [`confab::embed::Embedder`].

use crate::server::{ConfabServer, handle};
use crate::status::{ConfabStatus, Error, Result, clear_out, give, guard, input};
use chat::id::Id;
use confab::embed::{EmbedError, RoomVideo, VoiceMode};
use std::ffi::c_char;

fn embed_error(e: EmbedError) -> Error {
    let status = match &e {
        EmbedError::InvalidArgument(_) => ConfabStatus::InvalidArgument,
        EmbedError::NotFound(_) => ConfabStatus::NotFound,
        EmbedError::Store(_) => ConfabStatus::Io,
        _ => ConfabStatus::Internal,
    };
    Error::new(status, e.to_string())
}

fn room_id(s: &str) -> Result<Id> {
    s.parse().map_err(|_| Error::new(ConfabStatus::InvalidArgument, format!("room id {s:?} is not a number")))
}

fn json(v: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::new(ConfabStatus::Internal, e.to_string()))
}

/// Creates a voice room. `mode` is `"hybrid"` (audio forwarded, video composited), `"sfu"` (all
/// forwarded) or `"mcu"` (all mixed). `*out_room_id` is its id as a decimal string; free it with
/// `confab_string_free`.
///
/// # Safety
/// `name` and `mode` are NULL or NUL-terminated; `out_room_id` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confab_room_create(
    server: *mut ConfabServer,
    name: *const c_char,
    mode: *const c_char,
    out_room_id: *mut *mut c_char,
) -> ConfabStatus {
    guard(|| {
        // SAFETY: all three per the contract above.
        let (name, mode) = unsafe {
            clear_out(out_room_id, "out_room_id")?;
            (input(name, "name")?, input(mode, "mode")?)
        };
        let mode = VoiceMode::parse(mode).ok_or_else(|| {
            Error::new(ConfabStatus::InvalidArgument, format!("mode {mode:?} is not hybrid, sfu or mcu"))
        })?;
        let h = handle(server)?;
        let e = h.embedder()?;
        let id = h.block_on(e.create_room(name, mode))?.map_err(embed_error)?;
        // SAFETY: passed `clear_out` above.
        unsafe { give(out_room_id, id.to_string()) }
    })
}

/// Gives a room its own video composite (hybrid and mcu rooms): a JSON object with any of
/// `width`, `height` (even, 64..=3840 x 64..=2160), `fps` (1..=60), `bitrate_kbps`, `max_tiles`;
/// the keys left out keep the server's `[video]` settings. Applies from the room's next
/// compositor (set it before anyone joins). Bad JSON or values: `CONFAB_STATUS_INVALID_ARGUMENT`.
///
/// # Safety
/// `room_id` and `video_json` are NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confab_room_set_video(
    server: *mut ConfabServer,
    room_id: *const c_char,
    video_json: *const c_char,
) -> ConfabStatus {
    guard(|| {
        // SAFETY: both per the contract above.
        let (room, video) = unsafe { (input(room_id, "room_id")?, input(video_json, "video_json")?) };
        let room = self::room_id(room)?;
        let video: RoomVideo = serde_json::from_str(video)
            .map_err(|e| Error::new(ConfabStatus::InvalidArgument, format!("video_json: {e}")))?;
        let h = handle(server)?;
        let e = h.embedder()?;
        h.block_on(e.set_room_video(room, video))?.map_err(embed_error)
    })
}

/// Closes a room: every participant is removed (their voice sockets close with 4014), and tokens,
/// joins and queries for it fail from now on with `CONFAB_STATUS_NOT_FOUND`.
///
/// # Safety
/// `room_id` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confab_room_close(server: *mut ConfabServer, room_id: *const c_char) -> ConfabStatus {
    guard(|| {
        // SAFETY: per the contract above.
        let room = self::room_id(unsafe { input(room_id, "room_id") }?)?;
        let h = handle(server)?;
        let e = h.embedder()?;
        h.block_on(e.close_room(room))?.map_err(embed_error)
    })
}

/// Mints a voice token for `username` (2-32 letters, digits, `_.-`; created if new, without a
/// password) to join `room_id`. A client opens `ws://<http addr>/voice` and identifies with it.
/// Free `*out_token` with `confab_string_free`.
///
/// # Safety
/// `username` and `room_id` are NULL or NUL-terminated; `out_token` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confab_token_mint(
    server: *mut ConfabServer,
    username: *const c_char,
    room_id: *const c_char,
    out_token: *mut *mut c_char,
) -> ConfabStatus {
    guard(|| {
        // SAFETY: all three per the contract above.
        let (username, room) = unsafe {
            clear_out(out_token, "out_token")?;
            (input(username, "username")?, input(room_id, "room_id")?)
        };
        let room = self::room_id(room)?;
        let h = handle(server)?;
        let e = h.embedder()?;
        let token = h.block_on(e.mint_token(username, room))?.map_err(embed_error)?;
        // SAFETY: passed `clear_out` above.
        unsafe { give(out_token, token) }
    })
}

/// The room's participants as a JSON array, in join order:
/// `[{"user_id":"…","username":"…","self_mute":false,"server_mute":false,"speaking":false}]`.
/// Free `*out_json` with `confab_string_free`.
///
/// # Safety
/// `room_id` is NULL or NUL-terminated; `out_json` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confab_room_participants(
    server: *mut ConfabServer,
    room_id: *const c_char,
    out_json: *mut *mut c_char,
) -> ConfabStatus {
    guard(|| {
        // SAFETY: both per the contract above.
        let room = unsafe {
            clear_out(out_json, "out_json")?;
            input(room_id, "room_id")?
        };
        let room = self::room_id(room)?;
        let h = handle(server)?;
        let e = h.embedder()?;
        let people = h.block_on(e.participants(room))?.map_err(embed_error)?;
        // SAFETY: passed `clear_out` above.
        unsafe { give(out_json, json(&people)?) }
    })
}

/// The media engine's statistics as JSON, what `GET /voice/stats` serves:
/// `{"peers":[{"peer":…,"room":…,"packets_in":…,…}],"rooms":[…],"garbage_datagrams":…}`.
/// Free `*out_json` with `confab_string_free`.
///
/// # Safety
/// `out_json` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confab_stats_json(server: *mut ConfabServer, out_json: *mut *mut c_char) -> ConfabStatus {
    guard(|| {
        // SAFETY: per the contract above.
        unsafe { clear_out(out_json, "out_json") }?;
        let h = handle(server)?;
        let e = h.embedder()?;
        let stats = h.block_on(e.stats())?;
        // SAFETY: passed `clear_out` above.
        unsafe { give(out_json, json(&stats)?) }
    })
}
