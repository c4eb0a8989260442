//! Low-latency HLS playlists (RFC 8216bis, Apple's LL-HLS), sans-IO: the media playlist of one
//! rendition as its segments and parts are cut, the answer to a blocking reload
//! (`_HLS_msn` / `_HLS_part`), delta updates (`_HLS_skip`), and the master playlist.
//!
//! Segments are numbered by media sequence number (MSN) from 0; each is made of parts (~0.33 s),
//! the first of a segment always independent (it starts with a keyframe). A sliding window keeps
//! the newest `window` segments; parts are listed only for the last few segments, as the spec
//! asks (within three target durations of the end).

use std::collections::VecDeque;
use std::fmt::Write;

/// One variant of the master playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// The media playlist's URI, relative to the master.
    pub uri: String,
    /// Peak bits per second.
    pub bandwidth: u64,
    pub width: u32,
    pub height: u32,
    /// e.g. `avc1.64001f,mp4a.40.2`.
    pub codecs: String,
}

#[derive(Debug, Clone, PartialEq)]
struct Part {
    duration: f64,
    independent: bool,
}

#[derive(Debug, Clone, PartialEq)]
struct Segment {
    msn: u64,
    parts: Vec<Part>,
    /// Set once the segment is closed.
    duration: Option<f64>,
}

/// Whether a blocking playlist request can be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// The requested segment (and part) exists, or the stream ended: answer now.
    Ready,
    /// Not yet: hold the request until it is (or a bounded wait runs out).
    Wait,
    /// More than two segments ahead of the newest: 400 Bad Request.
    TooFar,
}

/// The media playlist of one rendition.
#[derive(Debug, Clone)]
pub struct MediaPlaylist {
    target_duration: f64,
    part_target: f64,
    window: usize,
    segments: VecDeque<Segment>,
    next_msn: u64,
    ended: bool,
    parts_cut: u64,
}

impl MediaPlaylist {
    /// `target_duration`: the segment length aimed at (the GOP, ~2 s); `part_target`: the part
    /// length (~0.33 s); `window`: segments kept.
    pub fn new(target_duration: f64, part_target: f64, window: usize) -> MediaPlaylist {
        MediaPlaylist {
            target_duration,
            part_target,
            window: window.max(3),
            segments: VecDeque::new(),
            next_msn: 0,
            ended: false,
            parts_cut: 0,
        }
    }

    /// Adds a part of `duration` seconds; an `independent` part (starting with a keyframe) opens a
    /// new segment when the current one already holds a target duration. Returns the part's
    /// (MSN, index).
    pub fn push_part(&mut self, duration: f64, independent: bool) -> (u64, usize) {
        let full = self
            .segments
            .back()
            .is_none_or(|s| s.duration.is_some() || self.open_length() + 1e-3 >= self.target_duration);
        if self.segments.is_empty() || (independent && full) {
            self.close_segment();
            self.segments.push_back(Segment { msn: self.next_msn, parts: Vec::new(), duration: None });
            self.next_msn += 1;
            while self.segments.len() > self.window {
                self.segments.pop_front();
            }
        }
        self.parts_cut += 1;
        let Some(seg) = self.segments.back_mut() else { return (self.next_msn, 0) };
        seg.parts.push(Part { duration, independent });
        (seg.msn, seg.parts.len() - 1)
    }

    /// The stream ended: the open segment closes and the playlist says `EXT-X-ENDLIST`.
    pub fn end(&mut self) {
        self.close_segment();
        self.ended = true;
    }

    /// A closed segment's duration, seconds.
    pub fn duration(&self, msn: u64) -> Option<f64> {
        self.segments.iter().find(|s| s.msn == msn).and_then(|s| s.duration)
    }

    /// Parts cut since the start.
    pub fn parts_cut(&self) -> u64 {
        self.parts_cut
    }

    /// The target duration as written in the playlist, seconds.
    pub fn target_secs(&self) -> f64 {
        self.target_duration
    }

    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// The segments kept, as MSNs.
    pub fn msns(&self) -> std::ops::Range<u64> {
        self.segments.front().map_or(0, |s| s.msn)..self.next_msn
    }

    /// Whether a request for `msn` (and `part`) can be answered now.
    pub fn readiness(&self, msn: u64, part: Option<usize>) -> Readiness {
        if self.ended {
            return Readiness::Ready;
        }
        let Some(last) = self.segments.back() else {
            return if msn <= 2 { Readiness::Wait } else { Readiness::TooFar };
        };
        if msn > last.msn + 2 {
            return Readiness::TooFar;
        }
        let have = match part {
            // The whole segment: it must be closed.
            None => msn < last.msn || (msn == last.msn && last.duration.is_some()),
            Some(p) => msn < last.msn || (msn == last.msn && p < last.parts.len()),
        };
        if have { Readiness::Ready } else { Readiness::Wait }
    }

    fn open_length(&self) -> f64 {
        self.segments.back().filter(|s| s.duration.is_none()).map_or(0.0, |s| s.parts.iter().map(|p| p.duration).sum())
    }

    fn close_segment(&mut self) {
        if let Some(seg) = self.segments.back_mut()
            && seg.duration.is_none()
            && !seg.parts.is_empty()
        {
            seg.duration = Some(seg.parts.iter().map(|p| p.duration).sum());
        }
    }

    /// How long before the end a client may skip segments in a delta update (`CAN-SKIP-UNTIL`).
    fn skip_until(&self) -> f64 {
        6.0 * self.target_duration
    }

    /// The playlist text; `skip`: a delta update (`_HLS_skip=YES`) that leaves out the segments
    /// older than `CAN-SKIP-UNTIL`. URIs: `seg{msn}.m4s`, `part{msn}.{i}.m4s`, `init.mp4`.
    pub fn render(&self, skip: bool) -> String {
        // Never below the longest segment (a source with longer GOPs makes longer segments).
        let longest = self.segments.iter().filter_map(|seg| seg.duration).fold(self.target_duration, f64::max);
        let target = (longest - 1e-3).ceil().max(1.0) as u64;
        let mut s = String::with_capacity(256 + 96 * self.segments.len() * 4);
        let _ = writeln!(s, "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:{target}");
        let _ = writeln!(s, "#EXT-X-PART-INF:PART-TARGET={:.3}", self.part_target);
        let _ = writeln!(
            s,
            "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={:.3},CAN-SKIP-UNTIL={:.1}",
            3.0 * self.part_target,
            self.skip_until()
        );
        let first = self.segments.front().map_or(self.next_msn, |seg| seg.msn);
        let _ = writeln!(s, "#EXT-X-MEDIA-SEQUENCE:{first}\n#EXT-X-MAP:URI=\"init.mp4\"");
        // Segments older than CAN-SKIP-UNTIL from the end may be skipped; parts are listed for the
        // last three target durations.
        let total: f64 = self.segments.iter().map(|seg| seg.duration.unwrap_or(0.0)).sum::<f64>() + self.open_length();
        let (mut age_from_start, mut skipped) = (0.0, 0usize);
        for seg in &self.segments {
            let len = seg.duration.unwrap_or_else(|| seg.parts.iter().map(|p| p.duration).sum());
            let from_end = total - age_from_start;
            age_from_start += len;
            if skip && seg.duration.is_some() && from_end > self.skip_until() {
                skipped += 1;
                continue;
            }
            if skipped > 0 {
                let _ = writeln!(s, "#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}");
                skipped = 0;
            }
            if from_end <= 3.0 * self.target_duration + len {
                for (i, p) in seg.parts.iter().enumerate() {
                    let indep = if p.independent { ",INDEPENDENT=YES" } else { "" };
                    let _ =
                        writeln!(s, "#EXT-X-PART:DURATION={:.5},URI=\"part{}.{i}.m4s\"{indep}", p.duration, seg.msn);
                }
            }
            if let Some(d) = seg.duration {
                let _ = writeln!(s, "#EXTINF:{d:.5},\nseg{}.m4s", seg.msn);
            }
        }
        if self.ended {
            s.push_str("#EXT-X-ENDLIST\n");
        } else if let Some(last) = self.segments.back() {
            // The part being written next: players request it before it exists.
            let (msn, i) = if last.duration.is_some() { (self.next_msn, 0) } else { (last.msn, last.parts.len()) };
            let _ = writeln!(s, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part{msn}.{i}.m4s\"");
        }
        s
    }
}

/// The master playlist: one `EXT-X-STREAM-INF` per variant, best first.
pub fn master(variants: &[Variant]) -> String {
    let mut s = String::from("#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for v in variants {
        let _ = writeln!(
            s,
            "#EXT-X-STREAM-INF:BANDWIDTH={},RESOLUTION={}x{},CODECS=\"{}\"\n{}",
            v.bandwidth, v.width, v.height, v.codecs, v.uri
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Six parts of 1/3 s per 2 s segment, a keyframe at each segment start.
    fn fill(p: &mut MediaPlaylist, parts: usize) {
        for i in 0..parts {
            p.push_part(1.0 / 3.0, i % 6 == 0);
        }
    }

    #[test]
    fn parts_make_segments_and_the_window_slides() {
        let mut p = MediaPlaylist::new(2.0, 1.0 / 3.0, 4);
        assert_eq!(p.push_part(1.0 / 3.0, true), (0, 0));
        fill(&mut p, 5);
        assert_eq!(p.push_part(1.0 / 3.0, true), (1, 0), "a keyframe after a full segment opens the next");
        assert_eq!(p.push_part(1.0 / 3.0, true), (1, 1), "not before the segment is full");
        fill(&mut p, 6 * 10);
        assert_eq!(p.msns().end - p.msns().start, 4, "the window");
        let text = p.render(false);
        assert!(text.starts_with("#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:2\n"), "{text}");
        assert!(text.contains("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.000"));
        assert!(text.contains(&format!("#EXT-X-MEDIA-SEQUENCE:{}", p.msns().start)));
        assert!(text.contains("#EXT-X-MAP:URI=\"init.mp4\""));
        assert!(text.contains("INDEPENDENT=YES") && text.contains("#EXTINF:2.00000,"), "{text}");
        assert!(text.trim_end().lines().last().unwrap().starts_with("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part"));
        let mut long_gop = MediaPlaylist::new(2.0, 1.0 / 3.0, 4);
        for i in 0..30 {
            long_gop.push_part(1.0 / 3.0, i % 12 == 0);
        }
        assert!(long_gop.render(false).contains("#EXT-X-TARGETDURATION:4\n"), "4 s GOPs, 4 s target");
        p.end();
        let done = p.render(false);
        assert!(done.ends_with("#EXT-X-ENDLIST\n") && !done.contains("PRELOAD-HINT"), "{done}");
    }

    #[test]
    fn blocking_reload_waits_for_the_part_and_refuses_far_ahead() {
        let mut p = MediaPlaylist::new(2.0, 1.0 / 3.0, 10);
        assert_eq!(p.readiness(0, Some(0)), Readiness::Wait, "nothing yet");
        assert_eq!(p.readiness(5, None), Readiness::TooFar);
        fill(&mut p, 8); // segment 0 (6 parts), segment 1 (2 parts)
        assert_eq!(p.readiness(1, Some(1)), Readiness::Ready);
        assert_eq!(p.readiness(1, Some(2)), Readiness::Wait, "the next part is not there yet");
        assert_eq!(p.readiness(0, None), Readiness::Ready, "segment 0 is closed");
        assert_eq!(p.readiness(1, None), Readiness::Wait, "segment 1 is open");
        assert_eq!(p.readiness(3, Some(0)), Readiness::Wait, "two ahead is allowed");
        assert_eq!(p.readiness(4, Some(0)), Readiness::TooFar);
        p.push_part(1.0 / 3.0, false);
        assert_eq!(p.readiness(1, Some(2)), Readiness::Ready);
        p.end();
        assert_eq!(p.readiness(9, None), Readiness::Ready, "an ended stream answers at once");
    }

    #[test]
    fn delta_updates_skip_old_segments() {
        let mut p = MediaPlaylist::new(2.0, 1.0 / 3.0, 20);
        fill(&mut p, 6 * 12 + 2);
        let full = p.render(false);
        let delta = p.render(true);
        assert!(delta.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS="), "{delta}");
        assert!(delta.len() < full.len());
        let skipped: usize = delta
            .lines()
            .find_map(|l| l.strip_prefix("#EXT-X-SKIP:SKIPPED-SEGMENTS="))
            .and_then(|n| n.parse().ok())
            .unwrap();
        let listed = delta.lines().filter(|l| l.starts_with("#EXTINF")).count();
        assert_eq!(skipped + listed, full.lines().filter(|l| l.starts_with("#EXTINF")).count());
        assert!(!full.contains("EXT-X-SKIP"));
    }

    #[test]
    fn master_lists_each_variant() {
        let m = master(&[
            Variant {
                uri: "720p/index.m3u8".into(),
                bandwidth: 2_800_000,
                width: 1280,
                height: 720,
                codecs: "avc1.64001f,mp4a.40.2".into(),
            },
            Variant {
                uri: "360p/index.m3u8".into(),
                bandwidth: 700_000,
                width: 640,
                height: 360,
                codecs: "avc1.42e01e,mp4a.40.2".into(),
            },
        ]);
        assert!(m.contains(
            "#EXT-X-STREAM-INF:BANDWIDTH=2800000,RESOLUTION=1280x720,CODECS=\"avc1.64001f,mp4a.40.2\"\n720p/index.m3u8"
        ));
        assert_eq!(m.matches("#EXT-X-STREAM-INF").count(), 2);
    }
}
