//! The event callback: one confab thread per server receives room events and calls the registered
//! C function with each as JSON. A thread of its own, not a runtime worker, so a slow callback
//! delays only later events, never the server.

use crate::server::{ConfabServer, handle};
use crate::status::{ConfabStatus, guard, lock};
use confab::embed::VoiceEvent;
use std::ffi::{CString, c_char, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{JoinHandle, ThreadId};
use tokio::sync::{broadcast, watch};

/// Receives one event as a NUL-terminated JSON object, valid only during the call, and the `user`
/// pointer given at registration. Called on a confab thread, one event at a time.
pub type ConfabEventCallback = Option<unsafe extern "C" fn(event_json: *const c_char, user: *mut c_void)>;

#[derive(Clone, Copy)]
struct Callback {
    f: unsafe extern "C" fn(*const c_char, *mut c_void),
    user: *mut c_void,
}

// SAFETY: the registering application promises that `user` may be used from confab's event thread
// (documented on `confab_set_event_callback`); confab itself never dereferences it.
unsafe impl Send for Callback {}

pub(crate) struct Events {
    current: Mutex<Option<Callback>>,
    /// Held for the duration of each call, so unregistering can wait for a call in progress.
    calling: Mutex<()>,
    stopping: AtomicBool,
    stop_tx: watch::Sender<bool>,
    thread: Mutex<Option<JoinHandle<()>>>,
    thread_id: Mutex<Option<ThreadId>>,
}

impl Events {
    pub(crate) fn start(rt: tokio::runtime::Handle, rx: broadcast::Receiver<VoiceEvent>) -> Arc<Events> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let ev = Arc::new(Events {
            current: Mutex::new(None),
            calling: Mutex::new(()),
            stopping: AtomicBool::new(false),
            stop_tx,
            thread: Mutex::new(None),
            thread_id: Mutex::new(None),
        });
        let me = ev.clone();
        let spawned = std::thread::Builder::new().name("confab-events".into()).spawn(move || {
            // A panic here must not unwind into nothing; the thread just ends.
            let _ = catch_unwind(AssertUnwindSafe(|| me.run(rt, rx, stop_rx)));
        });
        if let Ok(t) = spawned {
            *lock(&ev.thread_id) = Some(t.thread().id());
            *lock(&ev.thread) = Some(t);
        }
        ev
    }

    fn run(
        &self,
        rt: tokio::runtime::Handle,
        mut rx: broadcast::Receiver<VoiceEvent>,
        mut stop: watch::Receiver<bool>,
    ) {
        loop {
            if self.stopping.load(Ordering::Acquire) {
                return;
            }
            let next = rt.block_on(async {
                tokio::select! {
                    biased;
                    _ = stop.changed() => None,
                    ev = rx.recv() => Some(ev),
                }
            });
            let ev = match next {
                None | Some(Err(broadcast::error::RecvError::Closed)) => return,
                // Fell behind by more than the backlog: the missed events are gone, go on.
                Some(Err(broadcast::error::RecvError::Lagged(_))) => continue,
                Some(Ok(ev)) => ev,
            };
            let Ok(json) = serde_json::to_string(&ev).map(CString::new) else { continue };
            let Ok(json) = json else { continue };
            let _calling = lock(&self.calling);
            let cb = *lock(&self.current);
            if let Some(cb) = cb {
                // SAFETY: `f` is the application's callback with the documented signature; `json`
                // outlives the call; `user` is passed through untouched.
                unsafe { (cb.f)(json.as_ptr(), cb.user) };
            }
        }
    }

    fn on_event_thread(&self) -> bool {
        *lock(&self.thread_id) == Some(std::thread::current().id())
    }

    fn set(&self, cb: Option<Callback>) {
        *lock(&self.current) = cb;
        if !self.on_event_thread() {
            // Wait out a call in progress: after this returns the old callback is never called.
            drop(lock(&self.calling));
        }
    }

    /// Ends the thread; joins it unless called from it (from inside the callback).
    pub(crate) fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        let _ = self.stop_tx.send(true);
        if !self.on_event_thread()
            && let Some(t) = lock(&self.thread).take()
        {
            let _ = t.join();
        }
    }
}

/// Registers `cb` to receive room events of `server` as JSON, with `user` passed back untouched;
/// a NULL `cb` unregisters. Replaces any earlier callback. Events are objects with a `type`:
/// `{"type":"participant_join","room_id":"…","user_id":"…","username":"…"}`,
/// `{"type":"participant_leave","room_id":"…","user_id":"…"}`,
/// `{"type":"speaking","room_id":"…","user_id":"…","speaking":true}`.
///
/// `cb` runs on a confab thread, not the caller's: `user` must be usable from there. When this
/// returns, the previous callback is no longer running nor will be called again. The callback
/// may call other `confab_*` functions, this one included.
///
/// # Safety
/// `cb` is NULL or a function with this signature that stays callable until it is unregistered or
/// the server is stopped.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confab_set_event_callback(
    server: *mut ConfabServer,
    cb: ConfabEventCallback,
    user: *mut c_void,
) -> ConfabStatus {
    guard(|| {
        let h = handle(server)?;
        h.embedder()?;
        h.events.set(cb.map(|f| Callback { f, user }));
        Ok(())
    })
}
