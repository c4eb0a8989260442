//! A listener's receive slots (sans-IO): which source flows into each, sticky reassignment, and the
//! RTP timestamp rebasing that keeps each slot's timeline continuous across source switches.

use std::time::Instant;

use crate::PeerId;

/// Continuity of one outgoing slot's RTP timeline across source switches.
///
/// The receiver sees one SSRC per slot (str0m owns it), so when the source changes the timestamp
/// must keep advancing as if one source went on: the new source's timeline is shifted to start
/// where the old one stopped, plus the wall-clock gap (at least one 20 ms frame).
#[derive(Debug, Clone, Default)]
pub struct Rebase {
    source: Option<PeerId>,
    offset: u64,
    last: Option<(u64, Instant)>,
}

impl Rebase {
    /// The outgoing timestamp for a frame of `source` stamped `t_in` (in `rate` Hz units).
    pub fn map(&mut self, source: PeerId, t_in: u64, rate: u32, now: Instant) -> u64 {
        if self.source != Some(source) {
            self.source = Some(source);
            self.offset = match self.last {
                Some((t_out, at)) => {
                    let frame = u64::from(rate / 50);
                    let gap = (now.saturating_duration_since(at).as_micros() as u64).saturating_mul(u64::from(rate))
                        / 1_000_000;
                    t_out.wrapping_add(gap.max(frame)).wrapping_sub(t_in)
                }
                None => 0,
            };
        }
        let t_out = t_in.wrapping_add(self.offset);
        self.last = Some((t_out, now));
        t_out
    }
}

/// One receive m-line of a listener: its source and its timeline.
#[derive(Debug, Clone, Default)]
pub struct Slot {
    pub source: Option<PeerId>,
    pub rebase: Rebase,
    /// A keyframe of the current source went out: a video decoder can follow its deltas.
    pub keyed: bool,
}

/// Makes `slots` carry exactly `want` (at most `slots.len()` sources), moving as little as possible:
/// a source still wanted keeps its slot, newcomers take freed slots in order. Returns whether
/// anything moved; pushes each newly placed source to `added`.
pub fn fill(slots: &mut [Slot], want: &[PeerId], added: &mut Vec<PeerId>) -> bool {
    let mut moved = false;
    for slot in slots.iter_mut() {
        if slot.source.is_some_and(|s| !want.contains(&s)) {
            slot.source = None;
            moved = true;
        }
    }
    for &w in want {
        if slots.iter().any(|s| s.source == Some(w)) {
            continue;
        }
        if let Some(free) = slots.iter_mut().find(|s| s.source.is_none()) {
            free.source = Some(w);
            free.keyed = false;
            added.push(w);
            moved = true;
        }
    }
    moved
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn rebase_keeps_slot_timeline_continuous() {
        let t0 = Instant::now();
        let mut rb = Rebase::default();
        assert_eq!(rb.map(1, 1000, 48_000, t0), 1000);
        assert_eq!(rb.map(1, 1960, 48_000, t0 + 20 * MS), 1960);
        // Switch to a source with an unrelated timeline 100 ms later.
        assert_eq!(rb.map(2, 9_000_000, 48_000, t0 + 120 * MS), 1960 + 4800);
        assert_eq!(rb.map(2, 9_000_960, 48_000, t0 + 140 * MS), 1960 + 4800 + 960);
        // Switching back right away still advances by at least a frame; lower input values wrap fine.
        let back = rb.map(1, 500, 48_000, t0 + 140 * MS);
        assert_eq!(back, 1960 + 4800 + 960 + 960);
        assert_eq!(rb.map(1, 1460, 48_000, t0 + 160 * MS), back + 960);
    }

    #[test]
    fn fill_is_sticky_and_reports_newcomers() {
        let mut slots = vec![Slot::default(); 3];
        let mut added = Vec::new();
        assert!(fill(&mut slots, &[4, 5], &mut added));
        assert_eq!(added, [4, 5]);
        let sources = |s: &[Slot]| s.iter().map(|s| s.source).collect::<Vec<_>>();
        assert_eq!(sources(&slots), [Some(4), Some(5), None]);
        added.clear();
        assert!(!fill(&mut slots, &[5, 4], &mut added), "same set, nothing moves");
        assert!(fill(&mut slots, &[5, 6, 7, 8], &mut added), "more wanted than slots");
        assert_eq!(sources(&slots), [Some(6), Some(5), Some(7)]);
        assert_eq!(added, [6, 7]);
    }
}
