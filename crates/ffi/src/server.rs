//! The server handle: start, stop, free, address. A `ConfabServer*` is a key, not an address: a
//! number issued once and never again, looked up in a registry of live handles and never
//! dereferenced, so a stale, freed or made-up pointer is an error code rather than undefined
//! behaviour, even after a new server is started.

use crate::events::Events;
use crate::status::{ConfabStatus, Error, Result, clear_out, give, guard, input, lock, non_null};
use confab::config::Config;
use confab::embed::Embedder;
use confab::server::Running;
use std::collections::HashMap;
use std::ffi::c_char;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;
use tokio::runtime::Runtime;

/// An embedded confab server. Opaque: create it with `confab_server_start`, release it with
/// `confab_server_free`.
pub struct ConfabServer {
    _opaque: [u8; 0],
}

/// What a handle stands for.
pub(crate) struct Handle {
    rt: Mutex<Option<Runtime>>,
    tokio: tokio::runtime::Handle,
    live: Mutex<Option<Live>>,
    pub(crate) events: Arc<Events>,
}

/// A started, not yet stopped server.
struct Live {
    running: Running,
    embedder: Arc<Embedder>,
}

static HANDLES: LazyLock<Mutex<HashMap<usize, Arc<Handle>>>> = LazyLock::new(Mutex::default);
/// The next handle key; aligned like a pointer so it looks like one to tools.
static NEXT_KEY: AtomicUsize = AtomicUsize::new(1);

/// The live handle `server` names.
pub(crate) fn handle(server: *const ConfabServer) -> Result<Arc<Handle>> {
    non_null(server, "server")?;
    lock(&HANDLES)
        .get(&(server as usize))
        .cloned()
        .ok_or_else(|| Error::new(ConfabStatus::InvalidArgument, "not a live server handle (freed already?)"))
}

impl Handle {
    /// The embedding API of the running server; `ALREADY_STOPPED` after a stop.
    pub(crate) fn embedder(&self) -> Result<Arc<Embedder>> {
        lock(&self.live).as_ref().map(|l| l.embedder.clone()).ok_or_else(stopped)
    }

    /// Runs `fut` on the server's runtime, blocking the calling thread.
    pub(crate) fn block_on<F: Future>(&self, fut: F) -> Result<F::Output> {
        outside_runtime()?;
        Ok(self.tokio.block_on(fut))
    }

    fn stop(&self) -> Result<()> {
        outside_runtime()?;
        let live = lock(&self.live).take().ok_or_else(stopped)?;
        self.events.stop();
        self.block_on(live.running.stop())?.map_err(|e| Error::new(ConfabStatus::Io, format!("{e:#}")))
    }
}

/// Blocking calls from inside a tokio runtime (a Rust embedder's async code) would panic, and
/// dropping a runtime there aborts: refuse them up front.
fn outside_runtime() -> Result<()> {
    match tokio::runtime::Handle::try_current() {
        Ok(_) => {
            Err(Error::new(ConfabStatus::Internal, "called from inside a tokio runtime; call from a plain thread"))
        }
        Err(_) => Ok(()),
    }
}

fn stopped() -> Error {
    Error::new(ConfabStatus::AlreadyStopped, "the server is stopped")
}

/// Start-up failures: configuration mistakes are `BAD_CONFIG`, the rest (store, ports) `IO`.
fn start_error(e: anyhow::Error) -> Error {
    let bad_config = e.chain().any(|c| {
        c.is::<std::net::AddrParseError>()
            || matches!(c.downcast_ref::<chat::store::StoreError>(), Some(chat::store::StoreError::BadUrl(_)))
            || c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::InvalidInput)
    });
    Error::new(if bad_config { ConfabStatus::BadConfig } else { ConfabStatus::Io }, format!("{e:#}"))
}

/// Starts a server from `config`, JSON or TOML text (JSON when its first non-space character is
/// `{`) with the keys of `confab.toml`. `listen` and `media.bind` default to `127.0.0.1:0` (free
/// ports; see `confab_server_http_addr`); `CONFAB_*` environment variables do not apply. On success
/// `*out` is the handle; on failure it is NULL.
///
/// # Safety
/// `config` is NULL or a NUL-terminated string; `out` is NULL or points to a writable pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confab_server_start(config: *const c_char, out: *mut *mut ConfabServer) -> ConfabStatus {
    guard(|| {
        // SAFETY: NULL or writable, per the contract.
        unsafe { clear_out(out, "out") }?;
        // SAFETY: NULL or NUL-terminated, per the contract.
        let text = unsafe { input(config, "config") }?;
        outside_runtime()?;
        let cfg =
            Config::from_embedded_text(text).map_err(|e| Error::new(ConfabStatus::BadConfig, format!("{e:#}")))?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("confab")
            .build()
            .map_err(|e| Error::new(ConfabStatus::Io, format!("starting the runtime: {e}")))?;
        let running = match rt.block_on(Running::start(&cfg)) {
            Ok(r) => r,
            Err(e) => {
                rt.shutdown_timeout(Duration::from_secs(5));
                return Err(start_error(e));
            }
        };
        let embedder = Arc::new(Embedder::new(&running));
        let events = Events::start(rt.handle().clone(), embedder.subscribe());
        let handle = Arc::new(Handle {
            tokio: rt.handle().clone(),
            rt: Mutex::new(Some(rt)),
            live: Mutex::new(Some(Live { running, embedder })),
            events,
        });
        let key = NEXT_KEY.fetch_add(1, Ordering::Relaxed) * 16;
        lock(&HANDLES).insert(key, handle);
        let server = std::ptr::without_provenance_mut::<ConfabServer>(key);
        // SAFETY: non-NULL and writable: it passed `clear_out` above.
        unsafe { *out = server };
        Ok(())
    })
}

/// Stops the server gracefully: in-flight requests finish, sockets get close frames, the ports are
/// released, and no event callback runs after it returns (unless called from the callback itself).
/// A second call returns `CONFAB_STATUS_ALREADY_STOPPED`. The handle stays valid until freed.
#[unsafe(no_mangle)]
pub extern "C" fn confab_server_stop(server: *mut ConfabServer) -> ConfabStatus {
    guard(|| handle(server)?.stop())
}

/// Stops the server if it is running, then releases the handle; NULL is a no-op. Using the handle
/// afterwards (freeing it twice included) returns `CONFAB_STATUS_INVALID_ARGUMENT`.
#[unsafe(no_mangle)]
pub extern "C" fn confab_server_free(server: *mut ConfabServer) -> ConfabStatus {
    guard(|| {
        if server.is_null() {
            return Ok(());
        }
        outside_runtime()?;
        let Some(h) = lock(&HANDLES).remove(&(server as usize)) else {
            return Err(Error::new(ConfabStatus::InvalidArgument, "not a live server handle (freed already?)"));
        };
        let stopped = match h.stop() {
            Err(e) if e.status != ConfabStatus::AlreadyStopped => Err(e),
            _ => Ok(()),
        };
        if let Some(rt) = lock(&h.rt).take() {
            rt.shutdown_timeout(Duration::from_secs(5));
        }
        stopped
    })
}

/// The HTTP address the server listens on (API, `/gateway`, `/voice`), e.g. `127.0.0.1:43210`.
/// Free `*out` with `confab_string_free`.
///
/// # Safety
/// `out` is NULL or points to a writable pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confab_server_http_addr(server: *mut ConfabServer, out: *mut *mut c_char) -> ConfabStatus {
    guard(|| {
        // SAFETY: NULL or writable, per the contract.
        unsafe { clear_out(out, "out") }?;
        let h = handle(server)?;
        let addr = lock(&h.live).as_ref().map(|l| l.running.http).ok_or_else(stopped)?;
        // SAFETY: `out` passed `clear_out` above.
        unsafe { give(out, addr.to_string()) }
    })
}
