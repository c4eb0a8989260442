//! Snowflake ids: 64-bit, time-ordered, unique per node.
//!
//! Layout (high to low): 41 bits of milliseconds since [`EPOCH_MS`], 10 bits of node id, 12 bits of
//! sequence. Sorting by id sorts by creation time, which is what message paging relies on. Ids travel
//! as JSON strings, since JavaScript numbers lose precision past 2^53.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// 2026-01-01T00:00:00Z in unix milliseconds.
pub const EPOCH_MS: i64 = 1_767_225_600_000;
const NODE_BITS: u32 = 10;
const SEQ_BITS: u32 = 12;
const SEQ_MASK: i64 = (1 << SEQ_BITS) - 1;

/// A snowflake id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Id(pub i64);

impl Id {
    /// Unix milliseconds at which this id was minted.
    pub fn timestamp_ms(self) -> i64 {
        (self.0 >> (NODE_BITS + SEQ_BITS)) + EPOCH_MS
    }

    /// The smallest id that could be minted at `unix_ms`; useful as a paging bound.
    pub fn from_timestamp_ms(unix_ms: i64) -> Self {
        Id((unix_ms - EPOCH_MS).max(0) << (NODE_BITS + SEQ_BITS))
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for Id {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(Id)
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Id {
    /// Accepts the canonical string form and, leniently, a JSON integer.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw<'a> {
            Str(&'a str),
            String(String),
            Num(i64),
        }
        match Raw::deserialize(d)? {
            Raw::Num(n) => Ok(Id(n)),
            Raw::Str(s) => s.parse().map_err(serde::de::Error::custom),
            Raw::String(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// Mints ids for one node. Monotonic even if the wall clock steps back.
#[derive(Debug)]
pub struct IdGen {
    node: i64,
    state: Mutex<(i64, i64)>, // (last ms since epoch, sequence within it)
}

impl IdGen {
    pub fn new(node: u16) -> Self {
        IdGen { node: i64::from(node) & ((1 << NODE_BITS) - 1), state: Mutex::new((0, 0)) }
    }

    /// Next id for the current wall-clock time.
    pub fn next(&self) -> Id {
        self.next_at(now_ms())
    }

    /// Next id at an explicit time (unix ms); deterministic for tests.
    pub fn next_at(&self, unix_ms: i64) -> Id {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut ms = (unix_ms - EPOCH_MS).max(st.0);
        let seq = if ms == st.0 { (st.1 + 1) & SEQ_MASK } else { 0 };
        if ms == st.0 && seq == 0 {
            // 4096 ids in one millisecond: borrow the next millisecond rather than repeat.
            ms += 1;
        }
        *st = (ms, seq);
        Id((ms << (NODE_BITS + SEQ_BITS)) | (self.node << SEQ_BITS) | seq)
    }
}

/// Wall-clock unix time in milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_strictly_increasing_and_carry_time() {
        let g = IdGen::new(3);
        let t = EPOCH_MS + 10_000;
        let mut last = Id(0);
        for i in 0..10_000 {
            let id = g.next_at(t + i / 5000);
            assert!(id > last, "{id:?} after {last:?}");
            last = id;
        }
        assert!(g.next_at(t).timestamp_ms() >= t);
        assert_eq!(Id::from_timestamp_ms(t).timestamp_ms(), t);
    }

    #[test]
    fn clock_going_back_keeps_order() {
        let g = IdGen::new(1);
        let a = g.next_at(EPOCH_MS + 5_000);
        let b = g.next_at(EPOCH_MS + 1_000);
        assert!(b > a);
    }

    #[test]
    fn serde_as_string_accepts_number() {
        let id = Id(1234567890123456789);
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"1234567890123456789\"");
        assert_eq!(serde_json::from_str::<Id>("\"42\"").unwrap(), Id(42));
        assert_eq!(serde_json::from_str::<Id>("42").unwrap(), Id(42));
        assert!(serde_json::from_str::<Id>("\"x\"").is_err());
    }
}
