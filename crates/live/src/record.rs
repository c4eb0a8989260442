//! `[live] record_dir`: every closed segment of every rendition written to disk as it is cut,
//! with its init segment and a playlist that grows (`EVENT`) and ends as `VOD`:
//! `record_dir/{stream}/{started unix ms}/{rendition}/{init.mp4, seg{n}.m4s, index.m3u8}`.
//! A task of its own writes; a full queue drops a segment with a warning rather than stall
//! the stream.

use bytes::Bytes;
use std::collections::HashMap;
use std::fmt::Write;
use std::path::PathBuf;
use tokio::sync::mpsc;

/// What the recorder is told.
#[derive(Debug)]
pub enum Record {
    Init {
        stream: String,
        rendition: String,
        data: Bytes,
    },
    Segment {
        stream: String,
        rendition: String,
        msn: u64,
        duration: f64,
        data: Bytes,
    },
    /// The publisher stopped: the playlists end.
    End {
        stream: String,
    },
}

/// Segments waiting for the disk.
const QUEUE: usize = 256;

#[derive(Debug, Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Record>,
}

impl Recorder {
    /// Starts the writer task under `dir`.
    pub fn start(dir: PathBuf) -> Recorder {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(write(dir, rx));
        Recorder { tx }
    }

    pub fn record(&self, r: Record) {
        if let Err(e) = self.tx.try_send(r) {
            tracing::warn!(error = %e, "recording fell behind: a segment was not written");
        }
    }
}

struct Rec {
    dir: PathBuf,
    /// (MSN, duration) written so far.
    segments: Vec<(u64, f64)>,
}

async fn write(root: PathBuf, mut rx: mpsc::Receiver<Record>) {
    // Per stream: when this publish started (the folder), and its renditions.
    let mut live: HashMap<String, (u128, HashMap<String, Rec>)> = HashMap::new();
    while let Some(r) = rx.recv().await {
        let result = match r {
            Record::Init { stream, rendition, data } => {
                let (started, recs) = live.entry(stream.clone()).or_insert_with(|| (now_ms(), HashMap::new()));
                let dir = root.join(&stream).join(started.to_string()).join(&rendition);
                recs.insert(rendition, Rec { dir: dir.clone(), segments: Vec::new() });
                async {
                    tokio::fs::create_dir_all(&dir).await?;
                    tokio::fs::write(dir.join("init.mp4"), &data).await
                }
                .await
            }
            Record::Segment { stream, rendition, msn, duration, data } => {
                match live.get_mut(&stream).and_then(|(_, recs)| recs.get_mut(&rendition)) {
                    Some(rec) => {
                        rec.segments.push((msn, duration));
                        let seg = tokio::fs::write(rec.dir.join(format!("seg{msn}.m4s")), &data).await;
                        let list = tokio::fs::write(rec.dir.join("index.m3u8"), playlist(&rec.segments, false)).await;
                        seg.and(list)
                    }
                    None => Ok(()),
                }
            }
            Record::End { stream } => {
                let mut r = Ok(());
                for rec in live.remove(&stream).map(|(_, recs)| recs).unwrap_or_default().into_values() {
                    r = r.and(tokio::fs::write(rec.dir.join("index.m3u8"), playlist(&rec.segments, true)).await);
                }
                r
            }
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "recording failed");
        }
    }
}

fn now_ms() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis())
}

/// The recording's playlist: `EVENT` while it grows, `VOD` with an end list once done.
fn playlist(segments: &[(u64, f64)], ended: bool) -> String {
    let target = segments.iter().map(|(_, d)| *d).fold(1.0f64, f64::max).ceil() as u64;
    let kind = if ended { "VOD" } else { "EVENT" };
    let mut s = format!("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-PLAYLIST-TYPE:{kind}\n#EXT-X-TARGETDURATION:{target}\n");
    let _ =
        writeln!(s, "#EXT-X-MEDIA-SEQUENCE:{}\n#EXT-X-MAP:URI=\"init.mp4\"", segments.first().map_or(0, |(m, _)| *m));
    for (msn, d) in segments {
        let _ = writeln!(s, "#EXTINF:{d:.5},\nseg{msn}.m4s");
    }
    if ended {
        s.push_str("#EXT-X-ENDLIST\n");
    }
    s
}
