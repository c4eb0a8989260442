//! Error paths through the C ABI, called as C would: bad configs, NULL and stale pointers, double
//! stop and free, unknown and closed rooms.

use confab_ffi::*;
use std::ffi::{CStr, CString, c_char};
use std::path::Path;
use std::ptr::{null, null_mut};

fn last_error() -> String {
    // SAFETY: confab_last_error always returns a valid NUL-terminated string.
    unsafe { CStr::from_ptr(confab_last_error()) }.to_string_lossy().into_owned()
}

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

/// Takes a string confab returned, freeing it.
fn take(p: *mut c_char) -> String {
    assert!(!p.is_null());
    // SAFETY: a string confab returned and not yet freed.
    let s = unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
    // SAFETY: as above; freed once.
    assert_eq!(unsafe { confab_string_free(p) }, ConfabStatus::Ok);
    s
}

fn db_config(dir: &Path, extra: &str) -> CString {
    c(&format!(r#"{{"database_url": "sqlite:{}"{extra}}}"#, dir.join("e.db").display()))
}

fn start(config: &CString) -> *mut ConfabServer {
    let mut srv = null_mut();
    // SAFETY: valid string and out pointer.
    let st = unsafe { confab_server_start(config.as_ptr(), &mut srv) };
    assert_eq!(st, ConfabStatus::Ok, "{}", last_error());
    srv
}

#[test]
fn bad_configs_are_bad_config_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("b.db").display());
    let bad = [
        "{".to_string(),
        "listen = ".into(),
        r#"{"listn": "127.0.0.1:0"}"#.into(),
        "[media]\nbindd = 1".into(),
        r#"{"chat": {"node_id": "many"}}"#.into(),
        r#"{"database_url": "mysql://x/y"}"#.into(),
        format!(r#"{{"database_url": "{db}", "media": {{"bind": "nope"}}}}"#),
        format!(r#"{{"database_url": "{db}", "listen": "nope"}}"#),
    ];
    for text in bad {
        let mut srv = 0x10 as *mut ConfabServer;
        // SAFETY: valid string and out pointer.
        let st = unsafe { confab_server_start(c(&text).as_ptr(), &mut srv) };
        assert_eq!(st, ConfabStatus::BadConfig, "{text}: {}", last_error());
        assert!(srv.is_null(), "out is cleared on failure");
        assert!(!last_error().is_empty(), "{text}: no message");
    }
    let mut srv = null_mut();
    // SAFETY: a NUL-terminated (non-UTF-8) string and a valid out pointer.
    let st = unsafe { confab_server_start(c"{\xff}".as_ptr(), &mut srv) };
    assert_eq!(st, ConfabStatus::InvalidArgument, "{}", last_error());
}

#[test]
fn null_and_stale_pointers_are_errors() {
    use ConfabStatus::{InvalidArgument, NullPointer, Ok};
    let dir = tempfile::tempdir().unwrap();
    let srv = start(&db_config(dir.path(), ""));
    let (name, mode, user, room) = (c("r"), c("hybrid"), c("alice"), c("1"));
    let mut out = null_mut();
    let mut out_srv = null_mut();
    // SAFETY: every pointer is NULL, valid, or a deliberately bogus handle that confab must only
    // look up, never dereference.
    unsafe {
        assert_eq!(confab_server_start(null(), &mut out_srv), NullPointer);
        assert_eq!(confab_server_start(c("{}").as_ptr(), null_mut()), NullPointer);
        assert_eq!(confab_server_stop(null_mut()), NullPointer);
        assert_eq!(confab_server_http_addr(null_mut(), &mut out), NullPointer);
        assert_eq!(confab_server_http_addr(srv, null_mut()), NullPointer);
        assert_eq!(confab_room_create(null_mut(), name.as_ptr(), mode.as_ptr(), &mut out), NullPointer);
        assert_eq!(confab_room_create(srv, null(), mode.as_ptr(), &mut out), NullPointer);
        assert_eq!(confab_room_create(srv, name.as_ptr(), null(), &mut out), NullPointer);
        assert_eq!(confab_room_create(srv, name.as_ptr(), mode.as_ptr(), null_mut()), NullPointer);
        assert_eq!(confab_room_close(null_mut(), room.as_ptr()), NullPointer);
        assert_eq!(confab_room_close(srv, null()), NullPointer);
        assert_eq!(confab_token_mint(null_mut(), user.as_ptr(), room.as_ptr(), &mut out), NullPointer);
        assert_eq!(confab_token_mint(srv, null(), room.as_ptr(), &mut out), NullPointer);
        assert_eq!(confab_token_mint(srv, user.as_ptr(), null(), &mut out), NullPointer);
        assert_eq!(confab_token_mint(srv, user.as_ptr(), room.as_ptr(), null_mut()), NullPointer);
        assert_eq!(confab_room_participants(null_mut(), room.as_ptr(), &mut out), NullPointer);
        assert_eq!(confab_room_participants(srv, null(), &mut out), NullPointer);
        assert_eq!(confab_room_participants(srv, room.as_ptr(), null_mut()), NullPointer);
        assert_eq!(confab_stats_json(null_mut(), &mut out), NullPointer);
        assert_eq!(confab_stats_json(srv, null_mut()), NullPointer);
        assert_eq!(confab_set_event_callback(null_mut(), None, null_mut()), NullPointer);
        assert!(last_error().contains("NULL"), "{}", last_error());
        assert!(out.is_null());

        assert_eq!(confab_string_free(null_mut()), Ok, "freeing NULL is a no-op");
        assert_eq!(confab_server_free(null_mut()), Ok, "freeing NULL is a no-op");
        let bogus = 0x1234 as *mut ConfabServer;
        assert_eq!(confab_server_stop(bogus), InvalidArgument);
        assert_eq!(confab_stats_json(bogus, &mut out), InvalidArgument);
        assert_eq!(confab_server_free(bogus), InvalidArgument);
        assert_eq!(confab_string_free(0x1234 as *mut c_char), InvalidArgument);
        assert_eq!(confab_server_http_addr(srv, &mut out), Ok);
        assert_eq!(confab_string_free(out), Ok);
        assert_eq!(confab_string_free(out), InvalidArgument, "a string freed twice is refused");
        assert_eq!(confab_server_free(srv), Ok, "free stops a running server");
        assert_eq!(confab_server_free(srv), InvalidArgument, "double free");
        assert_eq!(confab_server_stop(srv), InvalidArgument, "use after free");
    }
}

#[test]
fn rooms_tokens_stop_and_restart() {
    use ConfabStatus::*;
    let dir = tempfile::tempdir().unwrap();
    let srv = start(&db_config(dir.path(), ""));
    let mut out = null_mut();
    // SAFETY: valid handle, strings and out pointers throughout.
    unsafe {
        assert_eq!(confab_server_http_addr(srv, &mut out), Ok);
        let addr = take(out);
        assert!(addr.starts_with("127.0.0.1:") && !addr.ends_with(":0"), "{addr}");

        assert_eq!(confab_room_create(srv, c("r").as_ptr(), c("loud").as_ptr(), &mut out), InvalidArgument);
        assert!(last_error().contains("loud"), "{}", last_error());
        assert_eq!(confab_room_create(srv, c(" ").as_ptr(), c("sfu").as_ptr(), &mut out), InvalidArgument);
        assert_eq!(confab_room_create(srv, c("r").as_ptr(), c("sfu").as_ptr(), &mut out), Ok);
        let room = c(&take(out));

        assert_eq!(confab_token_mint(srv, c("a b").as_ptr(), room.as_ptr(), &mut out), InvalidArgument);
        assert_eq!(confab_token_mint(srv, c("~confab-embedded").as_ptr(), room.as_ptr(), &mut out), InvalidArgument);
        assert_eq!(confab_token_mint(srv, c("alice").as_ptr(), c("123").as_ptr(), &mut out), NotFound);
        assert_eq!(confab_token_mint(srv, c("alice").as_ptr(), c("abc").as_ptr(), &mut out), InvalidArgument);
        assert_eq!(confab_room_participants(srv, c("123").as_ptr(), &mut out), NotFound);
        assert_eq!(confab_room_close(srv, c("123").as_ptr()), NotFound);
        // A room's own video: unknown rooms, bad JSON, unknown keys and bad values are refused.
        let video = |room: &CString, json: &str| confab_room_set_video(srv, room.as_ptr(), c(json).as_ptr());
        assert_eq!(video(&c("123"), r#"{"fps": 15}"#), NotFound);
        assert_eq!(video(&room, "{"), InvalidArgument);
        assert_eq!(video(&room, r#"{"fsp": 15}"#), InvalidArgument);
        assert!(last_error().contains("fsp"), "{}", last_error());
        assert_eq!(video(&room, r#"{"width": 641}"#), InvalidArgument);
        assert!(last_error().contains("even"), "{}", last_error());
        assert_eq!(video(&room, r#"{"fps": 0}"#), InvalidArgument);
        assert_eq!(confab_room_set_video(srv, room.as_ptr(), null()), NullPointer);
        assert_eq!(video(&room, r#"{"width": 320, "height": 180, "fps": 15}"#), Ok);
        assert_eq!(confab_token_mint(srv, c("alice").as_ptr(), room.as_ptr(), &mut out), Ok);
        assert!(take(out).contains('.'));
        assert_eq!(confab_token_mint(srv, c("alice").as_ptr(), room.as_ptr(), &mut out), Ok, "again: same user");
        take(out);
        assert_eq!(confab_room_participants(srv, room.as_ptr(), &mut out), Ok);
        assert_eq!(take(out), "[]");
        assert_eq!(confab_stats_json(srv, &mut out), Ok);
        assert!(take(out).contains("\"peers\":[]"));

        assert_eq!(confab_room_create(srv, c("kept").as_ptr(), c("mcu").as_ptr(), &mut out), Ok);
        let kept = c(&take(out));
        assert_eq!(confab_room_close(srv, room.as_ptr()), Ok);
        assert_eq!(confab_token_mint(srv, c("bob").as_ptr(), room.as_ptr(), &mut out), NotFound, "closed");
        assert!(last_error().contains("closed"), "{}", last_error());
        assert_eq!(confab_room_close(srv, room.as_ptr()), NotFound);

        assert_eq!(confab_server_stop(srv), Ok);
        assert_eq!(confab_server_stop(srv), AlreadyStopped, "{}", last_error());
        assert_eq!(confab_room_create(srv, c("r").as_ptr(), c("sfu").as_ptr(), &mut out), AlreadyStopped);
        assert_eq!(confab_server_http_addr(srv, &mut out), AlreadyStopped);
        assert_eq!(confab_set_event_callback(srv, None, null_mut()), AlreadyStopped);
        assert_eq!(confab_server_free(srv), Ok, "free after stop");

        // The same store and HTTP port again: the stop released the port, and rooms persist.
        let again = start(&db_config(dir.path(), &format!(r#", "listen": "{addr}""#)));
        assert_eq!(confab_token_mint(again, c("carol").as_ptr(), kept.as_ptr(), &mut out), Ok, "{}", last_error());
        take(out);
        assert_eq!(confab_server_free(again), Ok);
    }
}

#[test]
fn calls_from_inside_a_tokio_runtime_are_refused_harmlessly() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(&db_config(dir.path(), ""));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut out = null_mut();
    let mut other = null_mut();
    // SAFETY: valid handle, strings and out pointers.
    unsafe {
        rt.block_on(async {
            assert_eq!(confab_stats_json(srv, &mut out), ConfabStatus::Internal);
            assert!(last_error().contains("tokio runtime"), "{}", last_error());
            assert_eq!(confab_server_stop(srv), ConfabStatus::Internal);
            assert_eq!(confab_server_free(srv), ConfabStatus::Internal);
            assert_eq!(confab_server_start(c("{}").as_ptr(), &mut other), ConfabStatus::Internal);
        });
        assert_eq!(confab_stats_json(srv, &mut out), ConfabStatus::Ok, "still running");
        take(out);
        assert_eq!(confab_server_free(srv), ConfabStatus::Ok);
    }
}
