//! argon2id with the OWASP minimum parameters (19 MiB, t=2, p=1), which are argon2's defaults,
//! and [`Passwords`], the bounded pool every HTTP login, signup and password change hashes on.
//!
//! Each hash needs 19 MiB of working memory. Hashed on any blocking thread, a burst of logins
//! allocated 19 MiB per thread and the allocator kept it: 501 signups left RSS at 1.6 GiB. The pool
//! runs at most `concurrency` hashes at once, each on a buffer it lends out and takes back, queues a
//! bounded number of callers for a bounded time (then [`HashError::Busy`]), and frees its buffers
//! once idle, so memory is baseline + `concurrency` × 19 MiB under any storm, and baseline after.

use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use rand::RngCore;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Largest memory cost accepted from a stored hash (KiB), so a bad row cannot make us allocate GiBs.
const MAX_M_COST: u32 = 64 * 1024;
/// Callers queued per hashing slot before new ones are turned away at once.
const QUEUE_PER_SLOT: usize = 32;
/// Spare buffers are freed after the pool has been idle this long.
const IDLE: Duration = Duration::from_secs(10);

/// Hashes `password` into a PHC string with a fresh random salt. CPU-heavy (~tens of ms) and
/// allocates 19 MiB: servers hash through [`Passwords`]; this is for one-off tools.
pub fn hash_password(password: &str) -> Result<String, String> {
    hash_with(password.as_bytes(), &mut Vec::new())
}

/// Whether `password` matches the PHC string `hash` (parameters come from the hash itself).
pub fn verify_password(password: &str, hash: &str) -> bool {
    verify_with(password.as_bytes(), hash, &mut Vec::new())
}

fn hash_with(password: &[u8], mem: &mut Vec<Block>) -> Result<String, String> {
    let params = Params::default();
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let mut out = [0u8; 32];
    run(Algorithm::Argon2id, Version::V0x13, &params, password, &salt, &mut out, mem)?;
    Ok(format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        B64.encode(salt),
        B64.encode(out)
    ))
}

fn verify_with(password: &[u8], phc: &str, mem: &mut Vec<Block>) -> bool {
    let Some(p) = Phc::parse(phc) else { return false };
    let Ok(params) = Params::new(p.m, p.t, p.p, Some(p.hash.len())) else { return false };
    let mut out = vec![0u8; p.hash.len()];
    if run(p.algorithm, p.version, &params, password, &p.salt, &mut out, mem).is_err() {
        return false;
    }
    // Constant time: the comparison does not stop at the first differing byte.
    out.iter().zip(&p.hash).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

fn run(
    algorithm: Algorithm,
    version: Version,
    params: &Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
    mem: &mut Vec<Block>,
) -> Result<(), String> {
    mem.resize(params.block_count(), Block::default());
    Argon2::new(algorithm, version, params.clone())
        .hash_password_into_with_memory(password, salt, out, &mut mem[..])
        .map_err(|e| e.to_string())
}

/// A parsed `$argon2id$v=19$m=…,t=…,p=…$salt$hash` string.
struct Phc {
    algorithm: Algorithm,
    version: Version,
    m: u32,
    t: u32,
    p: u32,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

impl Phc {
    fn parse(s: &str) -> Option<Phc> {
        let mut parts = s.strip_prefix('$')?.split('$');
        let algorithm = match parts.next()? {
            "argon2id" => Algorithm::Argon2id,
            "argon2i" => Algorithm::Argon2i,
            "argon2d" => Algorithm::Argon2d,
            _ => return None,
        };
        let version = match parts.next()? {
            "v=19" => Version::V0x13,
            "v=16" => Version::V0x10,
            _ => return None,
        };
        let (mut m, mut t, mut p) = (None, None, None);
        for kv in parts.next()?.split(',') {
            let (k, v) = kv.split_once('=')?;
            let v: u32 = v.parse().ok()?;
            match k {
                "m" => m = Some(v),
                "t" => t = Some(v),
                "p" => p = Some(v),
                _ => return None,
            }
        }
        let salt = B64.decode(parts.next()?).ok()?;
        let hash = B64.decode(parts.next()?).ok()?;
        let m = m.filter(|m| *m <= MAX_M_COST)?;
        (parts.next().is_none()).then_some(Phc { algorithm, version, m, t: t?, p: p?, salt, hash })
    }
}

/// Why the pool did not hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    /// Every slot is busy and the queue is full, or the wait ran out: try again shortly.
    #[error("too many password checks at once")]
    Busy,
    #[error("password hashing failed: {0}")]
    Failed(String),
}

/// The bounded hashing pool (see the module docs).
#[derive(Debug)]
pub struct Passwords {
    slots: Semaphore,
    concurrency: usize,
    waiting: AtomicUsize,
    queue_timeout: Duration,
    /// Buffers not lent out, and when one was last returned.
    spare: Mutex<(Vec<Vec<Block>>, Instant)>,
}

impl Passwords {
    /// At most `concurrency` hashes at once (0: one per core); a caller waits at most
    /// `queue_timeout` for a slot.
    pub fn new(concurrency: usize, queue_timeout: Duration) -> Passwords {
        let concurrency = match concurrency {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        Passwords {
            slots: Semaphore::new(concurrency),
            concurrency,
            waiting: AtomicUsize::new(0),
            queue_timeout,
            spare: Mutex::new((Vec::new(), Instant::now())),
        }
    }

    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// A PHC string for `password`, with a fresh salt.
    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        self.on_pool(move |mem| hash_with(password.as_bytes(), mem)).await?.map_err(HashError::Failed)
    }

    /// Whether `password` matches the PHC string `phc`.
    pub async fn verify(&self, password: String, phc: String) -> Result<bool, HashError> {
        self.on_pool(move |mem| verify_with(password.as_bytes(), &phc, mem)).await
    }

    /// Frees the spare buffers once nothing was hashed for a while (housekeeping calls this).
    pub fn trim(&self, now: Instant) {
        let mut spare = self.spare.lock().unwrap_or_else(|p| p.into_inner());
        if now.saturating_duration_since(spare.1) >= IDLE {
            spare.0 = Vec::new();
        }
    }

    /// Buffers held now, lent out or spare (for tests and metrics).
    pub fn spare_buffers(&self) -> usize {
        self.spare.lock().unwrap_or_else(|p| p.into_inner()).0.len()
    }

    async fn on_pool<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Vec<Block>) -> R + Send + 'static,
    ) -> Result<R, HashError> {
        let queued = self.waiting.fetch_add(1, Ordering::AcqRel);
        let permit = if queued >= self.concurrency * QUEUE_PER_SLOT {
            None
        } else {
            tokio::time::timeout(self.queue_timeout, self.slots.acquire()).await.ok().and_then(Result::ok)
        };
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        let _permit = permit.ok_or(HashError::Busy)?;
        let mut mem = self.spare.lock().unwrap_or_else(|p| p.into_inner()).0.pop().unwrap_or_default();
        let (r, mem) = tokio::task::spawn_blocking(move || {
            let r = f(&mut mem);
            (r, mem)
        })
        .await
        .map_err(|e| HashError::Failed(e.to_string()))?;
        let mut spare = self.spare.lock().unwrap_or_else(|p| p.into_inner());
        spare.0.push(mem);
        spare.1 = Instant::now();
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_argon2id_and_verifies() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
        assert!(!verify_password("correct horse", "not a phc string"));
        assert_ne!(h, hash_password("correct horse").unwrap(), "salts differ");
    }

    #[test]
    fn verifies_hashes_of_the_password_hash_crate() {
        // Made by argon2's own PasswordHasher (the format before the pool): "correct horse".
        use argon2::password_hash::PasswordHasher;
        let h = Argon2::default().hash_password(b"correct horse").unwrap().to_string();
        assert!(verify_password("correct horse", &h), "{h}");
        assert!(!verify_password("correct horsf", &h));
        let huge =
            "$argon2id$v=19$m=4194304,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$ggO2b5KRyD8fQe8AmgNKJJu7NNMzTnnUAZtzDNvt1jU";
        assert!(!verify_password("x", huge), "memory costs beyond the cap are refused, not allocated");
    }

    #[tokio::test]
    async fn pool_bounds_waiters_and_frees_idle_buffers() {
        let pool = Passwords::new(1, Duration::ZERO);
        let h = pool.hash("correct horse".into()).await.unwrap();
        assert!(pool.verify("correct horse".into(), h.clone()).await.unwrap());
        assert_eq!(pool.spare_buffers(), 1, "the buffer is kept for the next hash");
        pool.trim(Instant::now());
        assert_eq!(pool.spare_buffers(), 1, "not idle yet");
        pool.trim(Instant::now() + IDLE);
        assert_eq!(pool.spare_buffers(), 0, "idle: memory goes back");

        // Every slot busy and no time to wait: Busy, at once, and nothing hashed.
        let held = pool.slots.acquire().await.unwrap();
        assert_eq!(pool.verify("correct horse".into(), h.clone()).await, Err(HashError::Busy));
        drop(held);
        assert_eq!(pool.verify("correct horse".into(), h).await, Ok(true));
    }
}
