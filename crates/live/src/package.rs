//! From published frames to LL-HLS: one rendition's parts (fMP4 fragments of ~`part_target`
//! seconds, each starting where a keyframe or the part length says), its segments (the parts of
//! one segment, concatenated) and its playlist. This is the passthrough rendition: the source's
//! own H.264 and AAC, untouched. Sans-IO; bounded by the playlist's window.
//!
//! Frames before the first keyframe are dropped (a player cannot start there). A video frame's
//! duration is known when the next one arrives, so each waits for its successor.

use crate::codec::{self, AacInfo, AvcInfo, BadConfig};
use crate::flv::{Audio, Video};
use crate::fmp4::{self, AUDIO_TRACK, Run, Sample, VIDEO_TIMESCALE, VIDEO_TRACK};
use crate::playlist::{MediaPlaylist, Variant};
use bytes::Bytes;
use std::collections::BTreeMap;

struct Frame {
    ts_ms: u32,
    keyframe: bool,
    composition_ms: i32,
    data: Bytes,
}

pub struct Packager {
    part_target: f64,
    playlist: MediaPlaylist,
    avc: Option<(AvcInfo, Bytes)>,
    aac: Option<(AacInfo, Bytes)>,
    init: Option<Bytes>,
    pending: Option<Frame>,
    video: Vec<Sample>,
    audio: Vec<Sample>,
    /// Decode time of the part's first sample, per track (track timescale).
    video_base: u64,
    audio_base: u64,
    /// Decode time the next sample of each track starts at.
    video_next: u64,
    audio_next: Option<u64>,
    part_secs: f64,
    sequence: u32,
    parts: BTreeMap<(u64, usize), Bytes>,
    /// The segment being cut (its MSN and bytes so far), and the closed ones, frozen so a
    /// request for one shares its bytes instead of copying them.
    open: Option<(u64, Vec<u8>)>,
    segments: BTreeMap<u64, Bytes>,
    bytes_sent: u64,
    secs_sent: f64,
    /// The next segment [`Packager::take_closed`] hands out.
    recorded: u64,
    /// The timestamp of the newest video frame in: a rendition's lag is the source's minus its own.
    last_video_ms: Option<u32>,
}

impl Packager {
    pub fn new(target_duration: f64, part_target: f64, window: usize) -> Packager {
        Packager {
            part_target,
            playlist: MediaPlaylist::new(target_duration, part_target, window),
            avc: None,
            aac: None,
            init: None,
            pending: None,
            video: Vec::new(),
            audio: Vec::new(),
            video_base: 0,
            audio_base: 0,
            video_next: 0,
            audio_next: None,
            part_secs: 0.0,
            sequence: 0,
            parts: BTreeMap::new(),
            open: None,
            segments: BTreeMap::new(),
            bytes_sent: 0,
            secs_sent: 0.0,
            recorded: 0,
            last_video_ms: None,
        }
    }

    pub fn video(&mut self, ts_ms: u32, video: Video) -> Result<(), BadConfig> {
        match video {
            Video::AvcConfig(record) => {
                let info = codec::avc(&record)?;
                self.avc = Some((info, record));
            }
            Video::AvcFrame { keyframe, composition_ms, data } => {
                self.last_video_ms = Some(ts_ms);
                self.frame(Frame { ts_ms, keyframe, composition_ms, data });
            }
            Video::AvcEnd | Video::Unsupported(_) => {}
        }
        Ok(())
    }

    pub fn audio(&mut self, ts_ms: u32, audio: Audio) -> Result<(), BadConfig> {
        match audio {
            Audio::AacConfig(asc) => {
                let info = codec::aac(&asc)?;
                self.aac = Some((info, asc));
            }
            Audio::AacFrame(data) => {
                // Only once video has started (and so the init segment says whether there is audio).
                let (Some(_), Some((info, _))) = (&self.init, &self.aac) else { return Ok(()) };
                let rate = u64::from(info.sample_rate);
                let next = self.audio_next.get_or_insert(u64::from(ts_ms) * rate / 1000);
                if self.audio.is_empty() {
                    self.audio_base = *next;
                }
                *next += 1024;
                self.audio.push(Sample { duration: 1024, keyframe: true, composition_offset: 0, data });
            }
            Audio::Unsupported(_) => {}
        }
        Ok(())
    }

    /// The publisher stopped: the last frames go out and the playlist ends.
    pub fn end(&mut self) {
        if let Some(last) = self.pending.take() {
            let d = (VIDEO_TIMESCALE / 30).max(1);
            self.push_video(last, d);
        }
        self.flush();
        self.close_open();
        self.playlist.end();
    }

    /// The segment being cut is done: its bytes are frozen for sharing.
    fn close_open(&mut self) {
        if let Some((msn, bytes)) = self.open.take() {
            self.segments.insert(msn, Bytes::from(bytes));
        }
    }

    fn frame(&mut self, f: Frame) {
        if self.init.is_none() {
            let Some((avc, record)) = &self.avc else { return };
            if !f.keyframe {
                return;
            }
            let aac = self.aac.as_ref().map(|(i, asc)| (i, asc.as_ref()));
            self.init = Some(fmp4::init_segment(avc, record, aac).into());
            self.video_next = u64::from(f.ts_ms) * 90;
        }
        if let Some(prev) = self.pending.take() {
            let d = f.ts_ms.saturating_sub(prev.ts_ms).max(1) * 90;
            self.push_video(prev, d);
            if (f.keyframe || self.part_secs + 1e-3 >= self.part_target) && !self.video.is_empty() {
                self.flush();
            }
        }
        self.pending = Some(f);
    }

    fn push_video(&mut self, f: Frame, duration: u32) {
        if self.video.is_empty() {
            self.video_base = self.video_next;
        }
        self.video_next += u64::from(duration);
        self.part_secs += f64::from(duration) / f64::from(VIDEO_TIMESCALE);
        let composition_offset = f.composition_ms.saturating_mul(90);
        self.video.push(Sample { duration, keyframe: f.keyframe, composition_offset, data: f.data });
    }

    /// The samples gathered so far become one part.
    fn flush(&mut self) {
        if self.video.is_empty() {
            return;
        }
        let independent = self.video[0].keyframe;
        let mut runs = vec![Run {
            track: VIDEO_TRACK,
            base_decode_time: self.video_base,
            samples: std::mem::take(&mut self.video),
        }];
        if !self.audio.is_empty() {
            runs.push(Run {
                track: AUDIO_TRACK,
                base_decode_time: self.audio_base,
                samples: std::mem::take(&mut self.audio),
            });
        }
        self.sequence += 1;
        let bytes = Bytes::from(fmp4::fragment(self.sequence, &runs));
        let (msn, i) = self.playlist.push_part(self.part_secs, independent);
        (self.bytes_sent, self.secs_sent) = (self.bytes_sent + bytes.len() as u64, self.secs_sent + self.part_secs);
        self.part_secs = 0.0;
        if self.open.as_ref().is_some_and(|(open, _)| *open != msn) {
            self.close_open();
        }
        self.open.get_or_insert_with(|| (msn, Vec::new())).1.extend_from_slice(&bytes);
        self.parts.insert((msn, i), bytes);
        let first = self.playlist.msns().start;
        self.parts.retain(|(m, _), _| *m >= first);
        self.segments.retain(|m, _| *m >= first);
    }

    /// The timestamp (ms) of the newest video frame packaged.
    pub fn last_video_ms(&self) -> Option<u32> {
        self.last_video_ms
    }

    pub fn playlist(&self) -> &MediaPlaylist {
        &self.playlist
    }

    pub fn init(&self) -> Option<Bytes> {
        self.init.clone()
    }

    pub fn part(&self, msn: u64, i: usize) -> Option<Bytes> {
        self.parts.get(&(msn, i)).cloned()
    }

    /// A whole segment, once it is closed (its last part cut).
    pub fn segment(&self, msn: u64) -> Option<Bytes> {
        self.segments.get(&msn).cloned()
    }

    /// Segments closed since the last call, with their durations (seconds), for recording.
    pub fn take_closed(&mut self) -> Vec<(u64, f64, Bytes)> {
        let mut out = Vec::new();
        self.recorded = self.recorded.max(self.playlist.msns().start);
        while let (Some(d), Some(b)) = (self.playlist.duration(self.recorded), self.segment(self.recorded)) {
            out.push((self.recorded, d, b));
            self.recorded += 1;
        }
        out
    }

    /// This rendition in the master playlist, once its codecs are known.
    pub fn variant(&self, uri: &str) -> Option<Variant> {
        let (avc, _) = self.avc.as_ref()?;
        let mut codecs = avc.codec.clone();
        if let Some((aac, _)) = &self.aac {
            codecs = format!("{codecs},{}", aac.codec());
        }
        let measured = if self.secs_sent > 0.5 { (self.bytes_sent as f64 * 8.0 / self.secs_sent) as u64 } else { 0 };
        Some(Variant {
            uri: uri.to_string(),
            bandwidth: (measured * 5 / 4).max(100_000),
            width: avc.width,
            height: avc.height,
            codecs,
        })
    }
}
