//! Opus at the settings the testbed speaks (48 kHz mono, VoIP, 64 kbit/s, 20 ms frames), and the
//! bounded history of decoded PCM a listener keeps for tone detection.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::tone::{FRAME_SAMPLES, SAMPLE_RATE};

/// Largest Opus packet we produce; 20 ms at 64 kbit/s is ~160 bytes, libopus wants room to spare.
const MAX_PACKET: usize = 1500;
/// Largest frame Opus can decode: 120 ms at 48 kHz.
const MAX_DECODED: usize = 5760;

/// A 48 kHz mono Opus encoder at 64 kbit/s, VoIP mode.
pub struct Encoder {
    inner: opus::Encoder,
    out: Vec<u8>,
}

impl Encoder {
    pub fn new() -> Result<Self> {
        let mut inner = opus::Encoder::new(SAMPLE_RATE, opus::Channels::Mono, opus::Application::Voip)
            .context("creating the Opus encoder")?;
        inner.set_bitrate(opus::Bitrate::Bits(64_000)).context("setting the Opus bitrate")?;
        Ok(Self { inner, out: vec![0; MAX_PACKET] })
    }

    /// Encodes one 20 ms frame (960 samples) into an Opus packet.
    pub fn encode(&mut self, pcm: &[i16]) -> Result<Vec<u8>> {
        anyhow::ensure!(pcm.len() == FRAME_SAMPLES, "an Opus frame here is {FRAME_SAMPLES} samples, got {}", pcm.len());
        let n = self.inner.encode(pcm, &mut self.out).context("Opus encode")?;
        Ok(self.out[..n].to_vec())
    }
}

/// A 48 kHz mono Opus decoder. SDP always says `opus/48000/2`, but a mono decoder reads stereo
/// packets too (downmixing), so one decoder fits any sender.
pub struct Decoder {
    inner: opus::Decoder,
    pcm: Vec<i16>,
}

impl Decoder {
    pub fn new() -> Result<Self> {
        let inner = opus::Decoder::new(SAMPLE_RATE, opus::Channels::Mono).context("creating the Opus decoder")?;
        Ok(Self { inner, pcm: vec![0; MAX_DECODED] })
    }

    /// Decodes one packet; the slice is valid until the next call.
    pub fn decode(&mut self, packet: &[u8]) -> Result<&[i16]> {
        let n = self.inner.decode(packet, &mut self.pcm, false).context("Opus decode")?;
        Ok(&self.pcm[..n])
    }

    /// Packet-loss concealment for one missing 20 ms frame, keeping the decoder's state (and so
    /// the tone's phase) in step with the sender.
    pub fn conceal(&mut self) -> Result<&[i16]> {
        let n = self.inner.decode(&[], &mut self.pcm[..FRAME_SAMPLES], false).context("Opus PLC")?;
        Ok(&self.pcm[..n])
    }
}

/// Decoded PCM of one track, newest last, bounded to `capacity`: old audio falls off the front.
/// Each frame keeps its arrival time so a listener can ask about "the last 500 ms" only.
#[derive(Debug)]
pub struct PcmHistory {
    frames: VecDeque<(Instant, Vec<i16>)>,
    samples: usize,
    capacity: usize,
}

impl PcmHistory {
    /// Keeps about `keep` of audio.
    pub fn new(keep: Duration) -> Self {
        let capacity = (keep.as_secs_f64() * f64::from(SAMPLE_RATE)) as usize;
        Self { frames: VecDeque::new(), samples: 0, capacity }
    }

    pub fn push(&mut self, at: Instant, pcm: &[i16]) {
        self.samples += pcm.len();
        self.frames.push_back((at, pcm.to_vec()));
        while self.samples > self.capacity {
            match self.frames.pop_front() {
                Some((_, old)) => self.samples -= old.len(),
                None => break,
            }
        }
    }

    /// PCM of the frames that arrived at or after `since`, concatenated in order.
    pub fn since(&self, since: Instant) -> Vec<i16> {
        self.frames.iter().filter(|(at, _)| *at >= since).flat_map(|(_, pcm)| pcm.iter().copied()).collect()
    }

    pub fn clear(&mut self) {
        self.frames.clear();
        self.samples = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_is_bounded_and_windowed() {
        let mut h = PcmHistory::new(Duration::from_millis(100));
        let t0 = Instant::now();
        for i in 0..10u16 {
            h.push(t0 + Duration::from_millis(20 * u64::from(i)), &[i as i16; FRAME_SAMPLES]);
        }
        // 100 ms = 5 frames kept: 5..=9.
        assert_eq!(h.since(t0).len(), 5 * FRAME_SAMPLES);
        assert_eq!(h.since(t0)[0], 5);
        let late = h.since(t0 + Duration::from_millis(160));
        assert_eq!(late.len(), 2 * FRAME_SAMPLES);
        assert_eq!(late[0], 8);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert!(Encoder::new().unwrap().encode(&[0; 100]).is_err());
        // Whatever libopus makes of garbage, it must come back as a value.
        let _ = Decoder::new().unwrap().decode(&[0xff; 7]);
    }
}
