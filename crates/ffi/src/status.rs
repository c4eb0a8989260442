//! Status codes, the per-thread last error, the panic guard, and strings across the boundary.

use std::cell::RefCell;
use std::collections::HashSet;
use std::ffi::{CStr, CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Mutex, MutexGuard};

/// What every `confab_*` function returns. On anything but `CONFAB_STATUS_OK`,
/// `confab_last_error()` says what went wrong.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfabStatus {
    Ok = 0,
    /// A required pointer argument was NULL.
    NullPointer = 1,
    /// An argument was malformed: not UTF-8, an unknown mode, a bad username, an unknown handle.
    InvalidArgument = 2,
    /// The configuration did not parse or names an unusable setting.
    BadConfig = 3,
    /// The store or a socket failed.
    Io = 4,
    /// The server was already stopped.
    AlreadyStopped = 5,
    /// No such room (or it was closed).
    NotFound = 6,
    /// confab panicked; the panic was caught at the boundary. The server may be unusable.
    Panic = 7,
    Internal = 8,
}

/// An error on its way to becoming a status code and a last-error message.
#[derive(Debug)]
pub struct Error {
    pub status: ConfabStatus,
    pub message: String,
}

impl Error {
    pub fn new(status: ConfabStatus, message: impl Into<String>) -> Error {
        Error { status, message: message.into() }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

thread_local! {
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs the body of an exported function: clears the last error, catches panics, and turns an
/// error into its status code and message.
pub fn guard(f: impl FnOnce() -> Result<()>) -> ConfabStatus {
    LAST_ERROR.with(|e| e.borrow_mut().take());
    let err = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => return ConfabStatus::Ok,
        Ok(Err(e)) => e,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Error::new(ConfabStatus::Panic, format!("confab panicked: {what}"))
        }
    };
    let msg = CString::new(err.message.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = Some(msg));
    err.status
}

/// The message of this thread's last failed call; "" after a success. Valid until the next
/// `confab_*` call on this thread.
#[unsafe(no_mangle)]
pub extern "C" fn confab_last_error() -> *const c_char {
    LAST_ERROR.with(|e| match &*e.borrow() {
        Some(m) => m.as_ptr(),
        None => c"".as_ptr(),
    })
}

/// A required pointer argument.
pub fn non_null<T>(p: *const T, what: &str) -> Result<()> {
    if p.is_null() { Err(Error::new(ConfabStatus::NullPointer, format!("{what} is NULL"))) } else { Ok(()) }
}

/// A NUL-terminated UTF-8 string argument.
///
/// # Safety
/// `p`, if not NULL, points to a NUL-terminated string that lives for the call.
pub unsafe fn input<'a>(p: *const c_char, what: &str) -> Result<&'a str> {
    non_null(p, what)?;
    // SAFETY: not NULL (checked); NUL-terminated and alive for the call, per the caller's contract.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str().map_err(|_| Error::new(ConfabStatus::InvalidArgument, format!("{what} is not UTF-8")))
}

/// Strings handed out and not yet freed, so that `confab_string_free` can refuse a pointer that is
/// not one of them instead of corrupting the heap.
static STRINGS: Mutex<Option<HashSet<usize>>> = Mutex::new(None);

/// Clears `*out` so it is NULL on every error path; fails if `out` itself is NULL.
///
/// # Safety
/// `out` is NULL or points to a writable pointer.
pub unsafe fn clear_out<T>(out: *mut *mut T, what: &str) -> Result<()> {
    non_null(out, what)?;
    // SAFETY: not NULL (checked) and writable, per the caller's contract.
    unsafe { *out = std::ptr::null_mut() };
    Ok(())
}

/// Hands `s` to the caller through `out`; the caller frees it with `confab_string_free`.
///
/// # Safety
/// `out` passed [`clear_out`] in this call.
pub unsafe fn give(out: *mut *mut c_char, s: String) -> Result<()> {
    let c = CString::new(s).map_err(|_| Error::new(ConfabStatus::Internal, "string with an interior NUL"))?;
    let p = c.into_raw();
    lock(&STRINGS).get_or_insert_with(HashSet::new).insert(p as usize);
    // SAFETY: non-NULL and writable: it passed `clear_out` in this call.
    unsafe { *out = p };
    Ok(())
}

/// Frees a string returned by confab. NULL is a no-op (`CONFAB_STATUS_OK`); a pointer confab did
/// not hand out, or already freed, is `CONFAB_STATUS_INVALID_ARGUMENT` and left alone.
///
/// # Safety
/// None beyond passing a pointer value: it is looked up, never trusted.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confab_string_free(s: *mut c_char) -> ConfabStatus {
    guard(|| {
        if s.is_null() {
            return Ok(());
        }
        let known = lock(&STRINGS).as_mut().is_some_and(|set| set.remove(&(s as usize)));
        if !known {
            return Err(Error::new(
                ConfabStatus::InvalidArgument,
                "not a string returned by confab (or freed already)",
            ));
        }
        // SAFETY: `s` came from `CString::into_raw` in `give` and was still registered, so it is
        // freed exactly once, here.
        drop(unsafe { CString::from_raw(s) });
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last() -> String {
        // SAFETY: confab_last_error always returns a valid NUL-terminated string.
        unsafe { CStr::from_ptr(confab_last_error()) }.to_string_lossy().into_owned()
    }

    #[test]
    fn panics_become_a_status_and_errors_are_per_call() {
        assert_eq!(guard(|| panic!("boom")), ConfabStatus::Panic);
        assert!(last().contains("boom"), "{}", last());
        assert_eq!(guard(|| Err(Error::new(ConfabStatus::NotFound, "gone"))), ConfabStatus::NotFound);
        assert_eq!(last(), "gone");
        assert_eq!(guard(|| Ok(())), ConfabStatus::Ok);
        assert_eq!(last(), "", "a success clears the last error");
        let other = std::thread::spawn(|| {
            guard(|| Err(Error::new(ConfabStatus::Io, "elsewhere")));
        });
        other.join().unwrap();
        assert_eq!(last(), "", "per thread");
    }
}
