//! Pre-encoded camera loops, for load: each distinct camera (colour, size, rate, noise) is encoded
//! once per process and every camera showing it replays the frames, so one box can carry dozens of
//! 360p cameras whose VP8 is real (the same libvpx settings, noise and bitrate as a live camera)
//! without encoding each of them live, which would leave the server too little CPU to measure.
//!
//! A loop starts with a keyframe and lasts one keyframe interval: replayed, it wraps to its
//! keyframe on the period a live camera sends its safety-net keyframe, and a keyframe request
//! restarts it. The deltas in between reference only the frames before them in the loop, so any
//! receiver that got the keyframe can follow.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{Context, Result, ensure};
use bytes::Bytes;
use tokio::sync::OnceCell;

use crate::picture::I420;
use crate::video_send::CameraOptions;
use crate::vp8::Vp8Encoder;

/// Frames encoded before the loop starts, so CBR rate control has settled (one second).
const WARMUP_SECS: u32 = 1;

/// One keyframe interval of a camera, the keyframe first.
#[derive(Debug)]
pub struct CameraLoop {
    pub frames: Vec<(Bytes, bool)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    colour: [u8; 3],
    width: u32,
    height: u32,
    fps: u32,
    bitrate_kbps: u32,
    noise_bits: u32,
    frames: usize,
}

type Cache = Mutex<HashMap<Key, Arc<OnceCell<Arc<CameraLoop>>>>>;

fn cache() -> &'static Cache {
    static LOOPS: OnceLock<Cache> = OnceLock::new();
    LOOPS.get_or_init(Cache::default)
}

/// The loop of `opts` showing `colour`: encoded on a blocking thread the first time, shared after.
pub async fn get(opts: &CameraOptions, colour: [u8; 3]) -> Result<Arc<CameraLoop>> {
    let frames = (opts.keyframe_interval.as_secs_f64() * f64::from(opts.fps)).round().max(1.0) as usize;
    let key = Key {
        colour,
        width: opts.width,
        height: opts.height,
        fps: opts.fps,
        bitrate_kbps: opts.bitrate_kbps,
        noise_bits: opts.noise.to_bits(),
        frames,
    };
    let cell = {
        let mut loops = cache().lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        loops.entry(key.clone()).or_default().clone()
    };
    let encoded = cell
        .get_or_try_init(|| async move {
            let encoded = tokio::task::spawn_blocking(move || encode(&key)).await.context("encoding task")??;
            anyhow::Ok(Arc::new(encoded))
        })
        .await?;
    Ok(encoded.clone())
}

fn encode(key: &Key) -> Result<CameraLoop> {
    let mut encoder = Vp8Encoder::new(key.width, key.height, key.fps, key.bitrate_kbps)?;
    let mut picture = I420::solid(key.width, key.height, key.colour);
    let noise = f32::from_bits(key.noise_bits);
    let mut seed = u64::from_le_bytes([key.colour[0], key.colour[1], key.colour[2], 1, 2, 3, 4, 5]);
    for _ in 0..WARMUP_SECS * key.fps {
        picture.add_noise(noise, &mut seed);
        encoder.encode(&picture)?;
    }
    encoder.force_keyframe();
    let mut frames = Vec::with_capacity(key.frames);
    for _ in 0..key.frames {
        picture.add_noise(noise, &mut seed);
        frames.extend(encoder.encode(&picture)?.into_iter().map(|(data, key)| (Bytes::from(data), key)));
    }
    ensure!(frames.first().is_some_and(|(_, key)| *key), "the loop does not start with a keyframe");
    Ok(CameraLoop { frames })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::vp8::Vp8Decoder;

    #[tokio::test]
    async fn a_loop_starts_with_a_keyframe_decodes_through_its_wrap_and_is_shared() {
        let opts = CameraOptions {
            width: 160,
            height: 90,
            fps: 10,
            keyframe_interval: Duration::from_secs(1),
            noise: 0.25,
            ..CameraOptions::default()
        };
        let a = get(&opts, [200, 40, 40]).await.expect("loop");
        let b = get(&opts, [200, 40, 40]).await.expect("loop");
        assert!(Arc::ptr_eq(&a, &b), "the same camera is encoded once");
        assert_eq!(a.frames.len(), 10);
        assert_eq!(a.frames.iter().filter(|(_, key)| *key).count(), 1, "one keyframe, first");
        let mut decoder = Vp8Decoder::new().expect("decoder");
        // Twice round: the wrap lands on the keyframe, so the replay stays decodable.
        for (data, _) in a.frames.iter().chain(a.frames.iter()) {
            let p = decoder.decode(data).expect("decodes").expect("a picture per frame");
            assert!(crate::picture::colour_close(p.centre_rgb().expect("centre"), [200, 40, 40], 24));
        }
        let other = get(&opts, [40, 40, 200]).await.expect("loop");
        assert!(!Arc::ptr_eq(&a, &other));
    }
}
