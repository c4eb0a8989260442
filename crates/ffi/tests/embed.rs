//! The C ABI end to end, as an embedding application uses it: a real webrtc-rs client (the
//! testbed) joins a room with a minted token; the callback sees it join, speak and leave; stats
//! show its peer; closing the room removes it.

use confab_ffi::*;
use std::ffi::{CStr, CString, c_char, c_void};
use std::ptr::null_mut;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use testbed::{VoiceClient, VoiceOptions};

fn last_error() -> String {
    // SAFETY: confab_last_error always returns a valid NUL-terminated string.
    unsafe { CStr::from_ptr(confab_last_error()) }.to_string_lossy().into_owned()
}

/// Takes a string confab returned, freeing it.
fn take(p: *mut c_char) -> String {
    // SAFETY: a string confab returned and not yet freed; freed once.
    unsafe {
        let s = CStr::from_ptr(p).to_string_lossy().into_owned();
        assert_eq!(confab_string_free(p), ConfabStatus::Ok);
        s
    }
}

unsafe extern "C" fn on_event(json: *const c_char, user: *mut c_void) {
    // SAFETY: `user` is the test's `Mutex<Vec<String>>`, alive until the server stopped; `json`
    // is valid for the call.
    let (seen, json) = unsafe { (&*(user as *const Mutex<Vec<String>>), CStr::from_ptr(json)) };
    seen.lock().unwrap().push(json.to_string_lossy().into_owned());
}

fn wait_event(seen: &Mutex<Vec<String>>, what: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = seen.lock().unwrap().iter().find(|e| e.contains(what)).cloned();
        if let Some(e) = found {
            return serde_json::from_str(&e).unwrap();
        }
        assert!(Instant::now() < deadline, "no {what} event; saw {:?}", seen.lock().unwrap());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn client_joins_through_a_minted_token_and_events_arrive() {
    let dir = tempfile::tempdir().unwrap();
    let config = CString::new(format!("database_url = \"sqlite:{}\"\n", dir.path().join("h.db").display())).unwrap();
    let seen = Box::new(Mutex::new(Vec::<String>::new()));
    let (mut srv, mut out) = (null_mut(), null_mut());
    // SAFETY (whole block): valid strings, out pointers and handle; `seen` outlives the server's
    // stop, after which the callback is never called.
    unsafe {
        assert_eq!(confab_server_start(config.as_ptr(), &mut srv), ConfabStatus::Ok, "{}", last_error());
        let user = &*seen as *const Mutex<Vec<String>> as *mut c_void;
        assert_eq!(confab_set_event_callback(srv, Some(on_event), user), ConfabStatus::Ok);
        assert_eq!(confab_room_create(srv, c"standup".as_ptr(), c"hybrid".as_ptr(), &mut out), ConfabStatus::Ok);
        let room = take(out);
        let room_c = CString::new(room.clone()).unwrap();
        let small = c"{\"width\": 320, \"height\": 180, \"fps\": 15}";
        assert_eq!(confab_room_set_video(srv, room_c.as_ptr(), small.as_ptr()), ConfabStatus::Ok, "{}", last_error());
        assert_eq!(confab_token_mint(srv, c"alice".as_ptr(), room_c.as_ptr(), &mut out), ConfabStatus::Ok);
        let token = take(out);
        assert_eq!(confab_server_http_addr(srv, &mut out), ConfabStatus::Ok);
        let voice_url = format!("ws://{}/voice", take(out));

        // The client runs on a runtime of its own: confab's calls must not be made from inside one.
        // It has a camera on: a room composites only then.
        let with_camera = VoiceOptions {
            camera: Some(testbed::video_send::CameraOptions::colour([255, 0, 0])),
            ..VoiceOptions::tone(440.0)
        };
        let rt = tokio::runtime::Runtime::new().unwrap();
        let client = rt.block_on(VoiceClient::join_with_voice_token(&voice_url, &token, with_camera)).unwrap();
        assert_eq!(client.session().room_id, room);

        let join = wait_event(&seen, "participant_join");
        assert_eq!((join["room_id"].as_str(), join["username"].as_str()), (Some(room.as_str()), Some("alice")));
        let speaking = wait_event(&seen, "\"speaking\":true");
        assert_eq!(speaking["user_id"], join["user_id"]);
        // The room's own composite size.
        let size = |p: &testbed::picture::I420| (p.width, p.height) == (320, 180);
        rt.block_on(client.wait_picture(None, size, Duration::from_secs(10))).unwrap();

        assert_eq!(confab_room_participants(srv, room_c.as_ptr(), &mut out), ConfabStatus::Ok);
        let people: serde_json::Value = serde_json::from_str(&take(out)).unwrap();
        assert_eq!(people[0]["username"], "alice", "{people}");
        // Media connects (ICE, DTLS) on the server's side a moment after the client's.
        let deadline = Instant::now() + Duration::from_secs(10);
        let stats = loop {
            assert_eq!(confab_stats_json(srv, &mut out), ConfabStatus::Ok);
            let stats: serde_json::Value = serde_json::from_str(&take(out)).unwrap();
            if stats["peers"][0]["connected"] == true || Instant::now() > deadline {
                break stats;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(stats["peers"][0]["connected"], true, "{stats}");
        assert_eq!(stats["peers"][0]["room"].to_string(), room, "{stats}");
        assert_eq!(stats["rooms"][0]["peers"], 1, "{stats}");

        // Closing the room removes the client (4014) and tells the callback.
        assert_eq!(confab_room_close(srv, room_c.as_ptr()), ConfabStatus::Ok);
        let closed = rt.block_on(client.wait_closed(Duration::from_secs(10))).unwrap();
        assert_eq!(closed.code, Some(4014));
        wait_event(&seen, "participant_leave");

        assert_eq!(confab_set_event_callback(srv, None, null_mut()), ConfabStatus::Ok);
        assert_eq!(confab_server_stop(srv), ConfabStatus::Ok, "{}", last_error());
        assert_eq!(confab_server_free(srv), ConfabStatus::Ok);
        drop(client);
    }
}

/// What the re-entrant callback did.
#[derive(Default)]
struct Reentrant {
    server: std::sync::atomic::AtomicUsize,
    calls: std::sync::atomic::AtomicUsize,
    results: Mutex<Vec<ConfabStatus>>,
}

unsafe extern "C" fn reenter(_json: *const c_char, user: *mut c_void) {
    use std::sync::atomic::Ordering::SeqCst;
    // SAFETY: `user` is the test's `Reentrant`, alive until the test ends.
    let r = unsafe { &*(user as *const Reentrant) };
    r.calls.fetch_add(1, SeqCst);
    let srv = std::ptr::without_provenance_mut::<ConfabServer>(r.server.load(SeqCst));
    let mut out = null_mut();
    // SAFETY: a live handle and a valid out pointer; the string is freed once.
    let results = unsafe {
        let stats = confab_stats_json(srv, &mut out);
        confab_string_free(out);
        [stats, confab_set_event_callback(srv, None, null_mut()), confab_server_stop(srv)]
    };
    r.results.lock().unwrap().extend(results);
}

#[test]
fn the_callback_may_call_confab_unregister_itself_and_stop_the_server() {
    use std::sync::atomic::Ordering::SeqCst;
    let dir = tempfile::tempdir().unwrap();
    let config =
        CString::new(format!(r#"{{"database_url": "sqlite:{}"}}"#, dir.path().join("r.db").display())).unwrap();
    let state = Box::new(Reentrant::default());
    let (mut srv, mut out) = (null_mut(), null_mut());
    // SAFETY: valid strings, out pointers and handle; `state` outlives the server.
    unsafe {
        assert_eq!(confab_server_start(config.as_ptr(), &mut srv), ConfabStatus::Ok, "{}", last_error());
        state.server.store(srv as usize, SeqCst);
        let user = &*state as *const Reentrant as *mut c_void;
        assert_eq!(confab_set_event_callback(srv, Some(reenter), user), ConfabStatus::Ok);
        assert_eq!(confab_room_create(srv, c"r".as_ptr(), c"sfu".as_ptr(), &mut out), ConfabStatus::Ok);
        let room = CString::new(take(out)).unwrap();
        assert_eq!(confab_token_mint(srv, c"dave".as_ptr(), room.as_ptr(), &mut out), ConfabStatus::Ok);
        let token = take(out);
        assert_eq!(confab_server_http_addr(srv, &mut out), ConfabStatus::Ok);
        let voice_url = format!("ws://{}/voice", take(out));

        let rt = tokio::runtime::Runtime::new().unwrap();
        // The server may stop (from the callback) before the join completes: either outcome is fine.
        let _ = rt.block_on(VoiceClient::join_with_voice_token(&voice_url, &token, VoiceOptions::tone(440.0)));
        let deadline = Instant::now() + Duration::from_secs(20);
        while state.results.lock().unwrap().len() < 3 {
            assert!(Instant::now() < deadline, "the callback did not finish");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(*state.results.lock().unwrap(), [ConfabStatus::Ok; 3]);
        assert_eq!(confab_server_stop(srv), ConfabStatus::AlreadyStopped);
        assert_eq!(confab_server_free(srv), ConfabStatus::Ok);
        assert_eq!(state.calls.load(SeqCst), 1, "unregistered: called once only");
    }
}
