//! The output side of a tick: the shared encoder for listeners not in the mix, each participant's
//! own encoder while it is in it, and the switches between the two (the module docs say why).

use std::sync::Arc;

use opus::{Application, Bitrate, Channels, Encoder, Signal};

use super::{FRAME, MAX_PACKET, MixConfig, MixStats, PRIME_FRAMES, SAMPLE_RATE};

fn encoder(cfg: &MixConfig) -> Result<Encoder, opus::Error> {
    let mut e = Encoder::new(SAMPLE_RATE, Channels::Mono, Application::Voip)?;
    e.set_bitrate(Bitrate::Bits(cfg.bitrate))?;
    e.set_complexity(cfg.complexity)?;
    e.set_signal(Signal::Voice)?;
    Ok(e)
}

/// A participant's own encoder, and whether its last packet came from it.
pub(super) struct Own {
    encoder: Encoder,
    active: bool,
}

impl Own {
    pub fn new(cfg: &MixConfig) -> Result<Self, opus::Error> {
        Ok(Own { encoder: encoder(cfg)?, active: false })
    }
}

pub(super) struct Outputs {
    shared: Encoder,
    /// The last full mixes, oldest first: what the shared stream's listeners have been hearing.
    history: Box<[[i16; FRAME]; PRIME_FRAMES]>,
    /// This tick's full mix.
    full: Box<[i16; FRAME]>,
    pcm: Box<[i16; FRAME]>,
    buf: Box<[u8; MAX_PACKET]>,
}

impl Outputs {
    pub fn new(cfg: &MixConfig) -> Result<Self, opus::Error> {
        Ok(Outputs {
            shared: encoder(cfg)?,
            history: Box::new([[0; FRAME]; PRIME_FRAMES]),
            full: Box::new([0; FRAME]),
            pcm: Box::new([0; FRAME]),
            buf: Box::new([0; MAX_PACKET]),
        })
    }

    /// This tick's full mix, encoded once for every listener not in it.
    pub fn shared(&mut self, total: &[i32; FRAME], stats: &mut MixStats) -> Option<Arc<[u8]>> {
        clip(total, None, &mut self.full);
        stats.encoded_shared += 1;
        encode(&mut self.shared, &self.full[..], &mut self.buf[..], stats)
    }

    /// `total − own` for a listener in the mix, from its own encoder. Coming from the shared stream,
    /// the encoder is first reset and primed with the full mixes that listener has been hearing.
    pub fn own(
        &mut self,
        own: &mut Own,
        total: &[i32; FRAME],
        own_pcm: &[i16; FRAME],
        stats: &mut MixStats,
    ) -> Option<Arc<[u8]>> {
        if !own.active {
            own.active = true;
            stats.switches_in += 1;
            let _ = own.encoder.reset_state();
            for h in self.history.iter() {
                stats.encoded_priming += 1;
                let _ = encode(&mut own.encoder, h, &mut self.buf[..], stats);
            }
        }
        clip(total, Some(own_pcm), &mut self.pcm);
        stats.encoded_personal += 1;
        encode(&mut own.encoder, &self.pcm[..], &mut self.buf[..], stats)
    }

    /// A listener not in the mix this tick: it is on the shared stream.
    pub fn leave(own: &mut Own, stats: &mut MixStats) {
        if own.active {
            own.active = false;
            stats.switches_out += 1;
        }
    }

    /// Ends the tick: its full mix joins the history.
    pub fn finish(&mut self) {
        self.history.rotate_left(1);
        self.history[PRIME_FRAMES - 1] = *self.full;
    }
}

fn encode(e: &mut Encoder, pcm: &[i16], buf: &mut [u8], stats: &mut MixStats) -> Option<Arc<[u8]>> {
    match e.encode(pcm, buf) {
        Ok(n) => Some(Arc::from(&buf[..n])),
        Err(_) => {
            stats.encode_errors += 1;
            None
        }
    }
}

/// `total − own` (or `total`), clipped to `i16`.
fn clip(total: &[i32; FRAME], own: Option<&[i16; FRAME]>, out: &mut [i16; FRAME]) {
    let clamp = |x: i32| x.clamp(i16::MIN.into(), i16::MAX.into()) as i16;
    match own {
        Some(own) => out.iter_mut().zip(total).zip(own).for_each(|((o, &t), &s)| *o = clamp(t - i32::from(s))),
        None => out.iter_mut().zip(total).for_each(|(o, &t)| *o = clamp(t)),
    }
}
