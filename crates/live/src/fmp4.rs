//! Fragmented MP4 (CMAF) for LL-HLS, written by hand: the init segment (`ftyp` + `moov` with an
//! H.264 and an AAC track) and one fragment per part (`moof` + `mdat`). GStreamer's `isofmp4mux`
//! (gst-plugins-rs) is not packaged here, and the boxes needed are few. Sans-IO.
//!
//! Track 1 is video (timescale 90 kHz), track 2 audio (timescale = its sample rate).

use crate::codec::{AacInfo, AvcInfo};

pub const VIDEO_TRACK: u32 = 1;
pub const AUDIO_TRACK: u32 = 2;
pub const VIDEO_TIMESCALE: u32 = 90_000;

/// One sample of a fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// In the track's timescale.
    pub duration: u32,
    pub keyframe: bool,
    /// Presentation minus decode time, in the track's timescale.
    pub composition_offset: i32,
    pub data: bytes::Bytes,
}

/// A track's samples in one fragment, from `base_decode_time` (track timescale).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub track: u32,
    pub base_decode_time: u64,
    pub samples: Vec<Sample>,
}

fn boxed(out: &mut Vec<u8>, kind: &[u8; 4], body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(kind);
    body(out);
    let size = (out.len() - start) as u32;
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

fn full(out: &mut Vec<u8>, kind: &[u8; 4], version: u8, flags: u32, body: impl FnOnce(&mut Vec<u8>)) {
    boxed(out, kind, |o| {
        o.extend_from_slice(&((u32::from(version) << 24) | (flags & 0xff_ffff)).to_be_bytes());
        body(o);
    });
}

fn u16s(o: &mut Vec<u8>, v: &[u16]) {
    v.iter().for_each(|x| o.extend_from_slice(&x.to_be_bytes()));
}

fn u32s(o: &mut Vec<u8>, v: &[u32]) {
    v.iter().for_each(|x| o.extend_from_slice(&x.to_be_bytes()));
}

const MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

/// `ftyp` + `moov` for H.264 (`avc_record`: its `AVCDecoderConfigurationRecord`) and, if given,
/// AAC (`asc`: its `AudioSpecificConfig`).
pub fn init_segment(avc: &AvcInfo, avc_record: &[u8], aac: Option<(&AacInfo, &[u8])>) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    boxed(&mut out, b"ftyp", |o| {
        o.extend_from_slice(b"iso6");
        u32s(o, &[0]);
        o.extend_from_slice(b"iso6cmfcmp41");
    });
    boxed(&mut out, b"moov", |o| {
        full(o, b"mvhd", 0, 0, |o| {
            u32s(o, &[0, 0, 1000, 0, 0x0001_0000]);
            u16s(o, &[0x0100, 0]);
            u32s(o, &[0, 0]);
            u32s(o, &MATRIX);
            u32s(o, &[0; 6]);
            u32s(o, &[AUDIO_TRACK + 1]);
        });
        trak(o, VIDEO_TRACK, avc.width, avc.height, VIDEO_TIMESCALE, b"vide", |o| {
            boxed(o, b"avc1", |o| {
                o.extend_from_slice(&[0; 6]);
                u16s(o, &[1, 0, 0]);
                u32s(o, &[0, 0, 0]);
                u16s(o, &[avc.width as u16, avc.height as u16]);
                u32s(o, &[0x0048_0000, 0x0048_0000, 0]);
                u16s(o, &[1]);
                o.extend_from_slice(&[0; 32]);
                u16s(o, &[0x0018, 0xffff]);
                boxed(o, b"avcC", |o| o.extend_from_slice(avc_record));
            });
        });
        if let Some((info, asc)) = aac {
            trak(o, AUDIO_TRACK, 0, 0, info.sample_rate, b"soun", |o| {
                boxed(o, b"mp4a", |o| {
                    o.extend_from_slice(&[0; 6]);
                    u16s(o, &[1]);
                    u32s(o, &[0, 0]);
                    u16s(o, &[u16::from(info.channels.max(1)), 16, 0, 0]);
                    u32s(o, &[info.sample_rate.min(65535) << 16]);
                    full(o, b"esds", 0, 0, |o| esds(o, asc));
                });
            });
        }
        boxed(o, b"mvex", |o| {
            for track in [VIDEO_TRACK, AUDIO_TRACK].into_iter().take(if aac.is_some() { 2 } else { 1 }) {
                full(o, b"trex", 0, 0, |o| u32s(o, &[track, 1, 0, 0, 0]));
            }
        });
    });
    out
}

fn trak(
    o: &mut Vec<u8>,
    track: u32,
    width: u32,
    height: u32,
    timescale: u32,
    handler: &[u8; 4],
    entry: impl FnOnce(&mut Vec<u8>),
) {
    let audio = handler == b"soun";
    boxed(o, b"trak", |o| {
        full(o, b"tkhd", 0, 3, |o| {
            u32s(o, &[0, 0, track, 0, 0, 0, 0]);
            u16s(o, &[0, 0, if audio { 0x0100 } else { 0 }, 0]);
            u32s(o, &MATRIX);
            u32s(o, &[width << 16, height << 16]);
        });
        boxed(o, b"mdia", |o| {
            full(o, b"mdhd", 0, 0, |o| {
                u32s(o, &[0, 0, timescale, 0]);
                u16s(o, &[0x55c4, 0]); // "und"
            });
            full(o, b"hdlr", 0, 0, |o| {
                u32s(o, &[0]);
                o.extend_from_slice(handler);
                u32s(o, &[0, 0, 0]);
                o.extend_from_slice(if audio { b"SoundHandler\0" } else { b"VideoHandler\0" });
            });
            boxed(o, b"minf", |o| {
                if audio {
                    full(o, b"smhd", 0, 0, |o| u16s(o, &[0, 0]));
                } else {
                    full(o, b"vmhd", 0, 1, |o| u16s(o, &[0, 0, 0, 0]));
                }
                boxed(o, b"dinf", |o| {
                    full(o, b"dref", 0, 0, |o| {
                        u32s(o, &[1]);
                        full(o, b"url ", 0, 1, |_| {});
                    })
                });
                boxed(o, b"stbl", |o| {
                    full(o, b"stsd", 0, 0, |o| {
                        u32s(o, &[1]);
                        entry(o);
                    });
                    full(o, b"stts", 0, 0, |o| u32s(o, &[0]));
                    full(o, b"stsc", 0, 0, |o| u32s(o, &[0]));
                    full(o, b"stsz", 0, 0, |o| u32s(o, &[0, 0]));
                    full(o, b"stco", 0, 0, |o| u32s(o, &[0]));
                });
            });
        });
    });
}

/// The MPEG-4 descriptors of `esds`: ES, decoder config (AAC, audio stream), the ASC, SL config.
fn esds(o: &mut Vec<u8>, asc: &[u8]) {
    let asc_len = asc.len().min(0x7f) as u8;
    let dcd_len = 13 + 2 + asc_len;
    o.extend_from_slice(&[0x03, 3 + 2 + dcd_len + 3, 0, 0, 0]);
    o.extend_from_slice(&[0x04, dcd_len, 0x40, 0x15, 0, 0, 0]);
    u32s(o, &[0, 0]);
    o.extend_from_slice(&[0x05, asc_len]);
    o.extend_from_slice(&asc[..usize::from(asc_len)]);
    o.extend_from_slice(&[0x06, 1, 0x02]);
}

/// One fragment (`moof` + `mdat`) with the runs given, in order; `sequence` counts fragments.
pub fn fragment(sequence: u32, runs: &[Run]) -> Vec<u8> {
    let payload: usize = runs.iter().flat_map(|r| &r.samples).map(|s| s.data.len()).sum();
    let mut out = Vec::with_capacity(payload + 128 + 16 * runs.iter().map(|r| r.samples.len()).sum::<usize>());
    let mut offsets = Vec::new();
    boxed(&mut out, b"moof", |o| {
        full(o, b"mfhd", 0, 0, |o| u32s(o, &[sequence]));
        for run in runs {
            boxed(o, b"traf", |o| {
                // default-base-is-moof: data offsets count from the moof's first byte.
                full(o, b"tfhd", 0, 0x02_0000, |o| u32s(o, &[run.track]));
                full(o, b"tfdt", 1, 0, |o| o.extend_from_slice(&run.base_decode_time.to_be_bytes()));
                // data offset, and per sample: duration, size, flags, composition offset (signed).
                full(o, b"trun", 1, 0x0001 | 0x0100 | 0x0200 | 0x0400 | 0x0800, |o| {
                    u32s(o, &[run.samples.len() as u32]);
                    offsets.push(o.len());
                    u32s(o, &[0]);
                    for s in &run.samples {
                        let flags = if s.keyframe { 0x0200_0000 } else { 0x0101_0000 };
                        u32s(o, &[s.duration, s.data.len() as u32, flags, s.composition_offset as u32]);
                    }
                });
            });
        }
    });
    let moof_len = out.len();
    let mut at = moof_len + 8;
    for (run, off) in runs.iter().zip(offsets) {
        out[off..off + 4].copy_from_slice(&(at as u32).to_be_bytes());
        at += run.samples.iter().map(|s| s.data.len()).sum::<usize>();
    }
    boxed(&mut out, b"mdat", |o| runs.iter().flat_map(|r| &r.samples).for_each(|s| o.extend_from_slice(&s.data)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (kind, size) of the top-level boxes.
    fn top(b: &[u8]) -> Vec<(String, usize)> {
        let mut out = Vec::new();
        let mut at = 0;
        while at + 8 <= b.len() {
            let size = u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize;
            out.push((String::from_utf8_lossy(&b[at + 4..at + 8]).into_owned(), size));
            assert!(size >= 8, "box sizes are sane");
            at += size;
        }
        assert_eq!(at, b.len(), "boxes fill the buffer exactly");
        out
    }

    #[test]
    fn init_and_fragment_box_layout() {
        let avc = AvcInfo { width: 320, height: 240, codec: "avc1.42c00d".into() };
        let aac = AacInfo { object_type: 2, sample_rate: 48000, channels: 1 };
        let init = init_segment(&avc, &[1, 0x42, 0xc0, 0x0d, 0xff, 0xe0, 0], Some((&aac, &[0x11, 0x88])));
        let kinds: Vec<String> = top(&init).into_iter().map(|(k, _)| k).collect();
        assert_eq!(kinds, ["ftyp", "moov"]);
        let frag = fragment(
            7,
            &[
                Run {
                    track: VIDEO_TRACK,
                    base_decode_time: 90_000,
                    samples: vec![Sample {
                        duration: 3000,
                        keyframe: true,
                        composition_offset: 0,
                        data: vec![1; 10].into(),
                    }],
                },
                Run {
                    track: AUDIO_TRACK,
                    base_decode_time: 48_000,
                    samples: vec![Sample {
                        duration: 1024,
                        keyframe: true,
                        composition_offset: 0,
                        data: vec![2; 5].into(),
                    }],
                },
            ],
        );
        let boxes = top(&frag);
        assert_eq!(boxes.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["moof", "mdat"]);
        assert_eq!(boxes[1].1, 8 + 15);
        assert_eq!(&frag[frag.len() - 15..], &[1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2]);
    }
}
