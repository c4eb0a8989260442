//! A light peer joining a confab voice channel (any mode: in `mcu` rooms the mix arrives on the
//! first receive m-line) as a real client does (grant over HTTP, the voice
//! gateway's `identify`, `ready`, one offer and answer), with a str0m offer: one `sendonly` Opus
//! m-line and one `recvonly` per receive slot the server allows.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use signaling::protocol::{ClientMsg, ServerMsg};
use str0m::change::SdpAnswer;
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind};
use str0m::{Candidate, Rtc};
use tokio::task::JoinHandle;

use super::peer::{self, Shared};
use crate::events::Events;
use crate::grant::{request_grant, ws_url};
use crate::socket::{self, Outbox};

/// A joined light participant: its voice socket stays open (dropping it leaves).
pub struct ConfabPeer {
    _outbox: Outbox,
    _events: Arc<Events>,
    tasks: Vec<JoinHandle<()>>,
    pub counts: Shared,
}

impl Drop for ConfabPeer {
    fn drop(&mut self) {
        self.tasks.iter().for_each(|t| t.abort());
    }
}

/// Joins `channel` as the user of `bearer`; media starts once ICE and DTLS are up.
pub async fn join(
    base: &str,
    bearer: &str,
    channel: &str,
    phase: Duration,
    payload: peer::Payload,
    stop: tokio::sync::watch::Receiver<bool>,
    timeout: Duration,
) -> Result<ConfabPeer> {
    let grant = request_grant(base, bearer, channel, timeout).await?;
    let (ws, heartbeat) = socket::connect(&ws_url(base, &grant.endpoint), timeout).await?;
    let events = Arc::new(Events::default());
    let (outbox, socket_task) = socket::spawn(ws, heartbeat, events.clone());
    let mut tasks = vec![socket_task];
    outbox.send(&ClientMsg::Identify { token: grant.token }).await?;
    let ready = events.wait_for(|m| matches!(m, ServerMsg::Ready { .. }), timeout).await.context("awaiting ready")?;
    let ServerMsg::Ready { audio_slots, .. } = ready else { bail!("awaited ready, got {ready:?}") };

    let (udp, addr) = peer::bind([127, 0, 0, 1].into()).await?;
    let mut rtc = light_rtc(addr)?;
    let mut api = rtc.sdp_api();
    let mic = api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
    for _ in 0..audio_slots {
        api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
    }
    let (offer, pending) = api.apply().context("str0m made no offer")?;
    outbox.send(&ClientMsg::Offer { sdp: offer.to_sdp_string() }).await?;
    let reply = events
        .wait_for(|m| matches!(m, ServerMsg::Answer { .. } | ServerMsg::Error { .. }), timeout)
        .await
        .context("awaiting the answer")?;
    let ServerMsg::Answer { sdp } = reply else { bail!("the offer was refused: {reply:?}") };
    rtc.sdp_api().accept_answer(pending, SdpAnswer::from_sdp_string(&sdp)?)?;
    let pt = opus_pt(&rtc).context("the answer has no Opus")?;
    let counts = Shared::default();
    tasks.push(tokio::spawn(peer::run(rtc, udp, Some((mic, pt, payload)), phase, counts.clone(), stop)));
    Ok(ConfabPeer { _outbox: outbox, _events: events, tasks, counts })
}

/// The Opus payload type negotiated (a `Writer`, which would say it per m-line, does not exist
/// in RTP mode; only Opus is configured).
pub fn opus_pt(rtc: &Rtc) -> Option<str0m::media::Pt> {
    rtc.codec_config().params().iter().find(|p| p.spec().codec == Codec::Opus).map(|p| p.pt())
}

/// A light peer's `Rtc`: RTP mode, Opus only (no RED), a host candidate on `addr`.
pub fn light_rtc(addr: std::net::SocketAddr) -> Result<Rtc> {
    let mut rtc =
        Rtc::builder().set_rtp_mode(true).clear_codecs().enable_opus(true, false).build(std::time::Instant::now());
    rtc.add_local_candidate(Candidate::host(addr, "udp")?);
    Ok(rtc)
}
