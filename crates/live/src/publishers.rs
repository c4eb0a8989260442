//! Who publishes which stream, whatever the protocol (RTMP, WHIP): one publisher per stream, and a
//! cap on streams at once. A publisher claims its stream when its key is accepted and releases it
//! when it ends, so the same key can publish again at once.

use crate::session::EndReason;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug)]
pub struct Publishers {
    max_streams: usize,
    /// Stream → the publisher holding it.
    live: Mutex<HashMap<String, u64>>,
    next: AtomicU64,
}

impl Publishers {
    pub fn new(max_streams: usize) -> Publishers {
        Publishers { max_streams, live: Mutex::default(), next: AtomicU64::new(1) }
    }

    /// A fresh publisher id (RTMP connections and WHIP sessions alike).
    pub fn next_id(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// Claims `stream` for publisher `who`.
    pub fn claim(&self, stream: &str, who: u64) -> Result<(), EndReason> {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        if live.contains_key(stream) {
            return Err(EndReason::AlreadyPublishing);
        }
        if live.len() >= self.max_streams {
            return Err(EndReason::TooManyStreams(self.max_streams));
        }
        live.insert(stream.to_string(), who);
        Ok(())
    }

    /// Releases `stream` if `who` still holds it.
    pub fn release(&self, stream: &str, who: u64) {
        self.live.lock().unwrap_or_else(|p| p.into_inner()).retain(|k, c| !(k == stream && *c == who));
    }

    pub fn is_live(&self, stream: &str) -> bool {
        self.live.lock().unwrap_or_else(|p| p.into_inner()).contains_key(stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_publisher_per_stream_and_a_cap() {
        let p = Publishers::new(2);
        let (a, b, c) = (p.next_id(), p.next_id(), p.next_id());
        assert_eq!(p.claim("s1", a), Ok(()));
        assert_eq!(p.claim("s1", b), Err(EndReason::AlreadyPublishing));
        assert_eq!(p.claim("s2", b), Ok(()));
        assert_eq!(p.claim("s3", c), Err(EndReason::TooManyStreams(2)));
        // A stale release (another publisher's) changes nothing; the holder's frees the stream.
        p.release("s1", b);
        assert!(p.is_live("s1"));
        p.release("s1", a);
        assert_eq!(p.claim("s1", c), Ok(()));
    }
}
