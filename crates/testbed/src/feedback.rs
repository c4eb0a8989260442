//! Getting keyframe requests (PLI, FIR) from webrtc-rs 0.21 to the camera.
//!
//! webrtc-rs hands inbound RTCP to its interceptors and, by default, no further: the chain's last
//! stage drops every RTCP packet that no interceptor marked `Attribute::DeliverToApplication`, so
//! `TrackLocal::poll` (where feedback about a sent track surfaces) stays silent. This interceptor
//! sits last of ours (application-most), lets the others see everything first, then keeps only
//! keyframe requests, one per packet, and marks them. Splitting matters: the endpoint after the
//! chain routes a compound packet by the destination SSRC of its *first* member, so a PLI behind a
//! receiver report would reach the wrong track, or none.

use std::collections::VecDeque;
use std::time::Instant;

use rtc::interceptor::{Attribute, AttributedPacket, Interceptor, Packet, Slot, StreamInfo, TaggedPacket};
use rtc::rtcp;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::sansio::Protocol;
use rtc::shared::error::Error;

/// Where it sits: above every built-in slot (the jitter buffer, at 13 000, is the highest).
pub const KEYFRAME_REQUESTS_SLOT: Slot = Slot::Custom(14_000);

/// Passes inbound PLI/FIR on to the application, one request per packet; drops other inbound RTCP
/// (the interceptors before it have acted on it already). RTP and outbound traffic pass untouched.
#[derive(Default)]
pub struct KeyframeRequests {
    reads: VecDeque<TaggedPacket>,
    writes: VecDeque<TaggedPacket>,
}

/// The keyframe requests in `packets`, each alone in its own packet (a FIR per entry).
pub fn split_keyframe_requests(packets: &[Box<dyn rtcp::Packet>]) -> Vec<Box<dyn rtcp::Packet>> {
    let mut out: Vec<Box<dyn rtcp::Packet>> = Vec::new();
    for packet in packets {
        let any = packet.as_any();
        if any.is::<PictureLossIndication>() {
            out.push(packet.clone());
        } else if let Some(fir) = any.downcast_ref::<FullIntraRequest>() {
            for entry in &fir.fir {
                out.push(Box::new(FullIntraRequest { fir: vec![entry.clone()], ..fir.clone() }));
            }
        }
    }
    out
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for KeyframeRequests {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        let Packet::Rtcp(packets) = &msg.message.packet else {
            self.reads.push_back(msg);
            return Ok(());
        };
        for request in split_keyframe_requests(packets) {
            let message = AttributedPacket::new(Packet::Rtcp(vec![request])).with(Attribute::DeliverToApplication);
            self.reads.push_back(TaggedPacket { now: msg.now, transport: msg.transport, message });
        }
        // The rest stays with the chain, whose last stage drops unmarked RTCP anyway; passing it
        // on keeps any attributes other interceptors attached for the stages beyond.
        self.reads.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.reads.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.writes.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.writes.pop_front()
    }
}

impl Interceptor for KeyframeRequests {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

/// Whether an RTCP packet asks `ssrc` for a keyframe.
pub fn asks_keyframe_of(packet: &dyn rtcp::Packet, ssrc: u32) -> bool {
    let any = packet.as_any();
    if let Some(pli) = any.downcast_ref::<PictureLossIndication>() {
        return pli.media_ssrc == ssrc;
    }
    any.downcast_ref::<FullIntraRequest>().is_some_and(|fir| fir.fir.iter().any(|e| e.ssrc == ssrc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtcp::payload_feedbacks::full_intra_request::FirEntry;
    use rtc::rtcp::receiver_report::ReceiverReport;

    fn tagged(packet: Packet) -> TaggedPacket {
        TaggedPacket { now: Instant::now(), transport: Default::default(), message: AttributedPacket::new(packet) }
    }

    #[test]
    fn keyframe_requests_are_split_out_and_marked() {
        let mut kr = KeyframeRequests::default();
        let fir = FullIntraRequest {
            sender_ssrc: 1,
            media_ssrc: 0,
            fir: vec![FirEntry { ssrc: 7, sequence_number: 1 }, FirEntry { ssrc: 8, sequence_number: 1 }],
        };
        let compound: Vec<Box<dyn rtcp::Packet>> = vec![
            Box::new(ReceiverReport::default()),
            Box::new(PictureLossIndication { sender_ssrc: 1, media_ssrc: 5 }),
            Box::new(fir),
        ];
        kr.handle_read(tagged(Packet::Rtcp(compound))).unwrap();
        let out: Vec<TaggedPacket> = std::iter::from_fn(|| kr.poll_read()).collect();
        assert_eq!(out.len(), 4, "three requests, then the original");
        let ssrcs: Vec<u32> = out[..3]
            .iter()
            .map(|m| {
                assert!(m.message.has(&Attribute::DeliverToApplication));
                let Packet::Rtcp(p) = &m.message.packet else { panic!("not RTCP") };
                assert_eq!(p.len(), 1);
                p[0].destination_ssrc()[0]
            })
            .collect();
        assert_eq!(ssrcs, [5, 7, 8]);
        assert!(!out[3].message.has(&Attribute::DeliverToApplication));
        let Packet::Rtcp(p) = &out[..3][1].message.packet else { panic!() };
        assert!(asks_keyframe_of(p[0].as_ref(), 7) && !asks_keyframe_of(p[0].as_ref(), 8));

        // RTP and writes pass through as they are.
        kr.handle_read(tagged(Packet::Rtp(Default::default()))).unwrap();
        assert!(matches!(kr.poll_read().map(|m| m.message.packet), Some(Packet::Rtp(_))));
        kr.handle_write(tagged(Packet::Rtcp(vec![]))).unwrap();
        assert!(kr.poll_write().is_some());
    }
}
