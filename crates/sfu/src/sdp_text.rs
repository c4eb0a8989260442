//! Reading and completing SDP as text, where str0m's parsed model does not say enough (which
//! m-section a codec sits in) or its answer does not suit every client (candidates only in the
//! first bundled m-section, trickle advertised by an ICE-lite server that never trickles).

/// Whether some m-section of `kind` (`"audio "`, `"video "`) maps a payload type to `codec`
/// (`"opus/48000"`, `"vp8/90000"`), case-insensitively.
pub(crate) fn has_codec(sdp: &str, kind: &str, codec: &str) -> bool {
    let mut in_kind = false;
    for line in sdp.lines().map(str::trim) {
        if let Some(m) = line.strip_prefix("m=") {
            in_kind = m.starts_with(kind);
        } else if in_kind
            && let Some(map) = line.strip_prefix("a=rtpmap:")
            && map
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.get(..codec.len()))
                .is_some_and(|c| c.eq_ignore_ascii_case(codec))
        {
            return true;
        }
    }
    false
}

/// Whether the offer's microphone, its first audio m-line that sends (`sendonly` or `sendrecv`,
/// the default), offers Opus; `None` when there is no such m-line.
pub(crate) fn mic_has_opus(sdp: &str) -> Option<bool> {
    let mut sections = sections(sdp).skip(1);
    let mic = sections.find(|s| {
        s.first().is_some_and(|m| m.starts_with("m=audio "))
            && !s.iter().any(|l| matches!(*l, "a=recvonly" | "a=inactive"))
    })?;
    Some(has_codec(&mic.join("\r\n"), "audio ", "opus/48000"))
}

/// The answer as every client can read it: each m-section that is not rejected (port 0) carries
/// the server's candidates and `a=end-of-candidates`, and no `trickle` ICE option is advertised.
///
/// str0m writes the host candidate only in the first m-section of the BUNDLE group; a client that
/// reads candidates from another m-section (aiortc's known bundling bug) then has none and waits
/// forever. An ICE-lite server gathers nothing later, so it says so (RFC 8840 §4.2) instead of
/// advertising trickle.
pub fn complete_candidates(sdp: &str) -> String {
    let all = sections(sdp).collect::<Vec<_>>();
    let mut candidates: Vec<&str> = Vec::new();
    for c in all.iter().flatten().copied().filter(|l| l.starts_with("a=candidate:")) {
        if !candidates.contains(&c) {
            candidates.push(c);
        }
    }
    let mut out = String::with_capacity(sdp.len() + 128 * all.len());
    for (i, section) in all.iter().enumerate() {
        let media = i > 0 && !section.first().is_some_and(|m| is_rejected(m));
        for line in section {
            if line.starts_with("a=candidate:") || *line == "a=end-of-candidates" {
                continue;
            }
            if let Some(opts) = line.strip_prefix("a=ice-options:") {
                let kept: Vec<&str> = opts.split_whitespace().filter(|o| *o != "trickle").collect();
                if !kept.is_empty() {
                    out.push_str("a=ice-options:");
                    out.push_str(&kept.join(" "));
                    out.push_str("\r\n");
                }
                continue;
            }
            out.push_str(line);
            out.push_str("\r\n");
        }
        if media {
            for c in &candidates {
                out.push_str(c);
                out.push_str("\r\n");
            }
            out.push_str("a=end-of-candidates\r\n");
        }
    }
    out
}

/// `m=<kind> 0 …`: a rejected m-section.
fn is_rejected(m_line: &str) -> bool {
    m_line.split_whitespace().nth(1) == Some("0")
}

/// The session part, then each m-section, as lines without their line endings.
fn sections(sdp: &str) -> impl Iterator<Item = Vec<&str>> {
    let mut out: Vec<Vec<&str>> = vec![Vec::new()];
    for line in sdp.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if line.starts_with("m=") {
            out.push(Vec::new());
        }
        if let Some(last) = out.last_mut() {
            last.push(line);
        }
    }
    out.into_iter()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has_opus_audio(sdp: &str) -> bool {
        has_codec(sdp, "audio ", "opus/48000")
    }

    #[test]
    fn vp8_must_be_in_a_video_section() {
        assert!(has_codec("m=video 9 x 96\r\na=rtpmap:96 VP8/90000\r\n", "video ", "vp8/90000"));
        assert!(!has_codec("m=video 9 x 102\r\na=rtpmap:102 H264/90000\r\n", "video ", "vp8/90000"));
        assert!(!has_codec("m=audio 9 x 96\r\na=rtpmap:96 VP8/90000\r\n", "video ", "vp8/90000"));
    }

    #[test]
    fn opus_must_be_in_an_audio_section() {
        let audio = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 OPUS/48000/2\r\n";
        assert!(has_opus_audio(audio));
        assert!(!has_opus_audio("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=rtpmap:0 PCMU/8000\r\n"));
        assert!(!has_opus_audio("v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n"));
        assert!(!has_opus_audio("a=rtpmap:111 opus/48000/2\r\n"));
        assert!(!has_opus_audio("m=audio 9 x 111\r\na=rtpmap:111 opus/4\r\n"));
        assert!(!has_opus_audio("m=audio 9 x 111\r\na=rtpmap:111 opus/4800\u{e9}\r\n"));
    }

    #[test]
    fn the_microphone_is_the_first_sending_audio_m_line() {
        let pcmu_mic = "v=0\r\nm=audio 9 x 0\r\na=sendonly\r\na=rtpmap:0 PCMU/8000\r\n\
                        m=audio 9 x 111\r\na=recvonly\r\na=rtpmap:111 opus/48000/2\r\n";
        assert_eq!(mic_has_opus(pcmu_mic), Some(false), "Opus only on a receive slot");
        let opus_mic = "v=0\r\nm=audio 9 x 0\r\na=recvonly\r\na=rtpmap:0 PCMU/8000\r\n\
                        m=audio 9 x 111\r\na=rtpmap:111 opus/48000/2\r\n";
        assert_eq!(mic_has_opus(opus_mic), Some(true), "no direction is sendrecv");
        assert_eq!(mic_has_opus("v=0\r\nm=audio 9 x 0\r\na=recvonly\r\n"), None);
    }

    #[test]
    fn every_media_section_gets_the_candidates_and_their_end() {
        let answer = "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\na=group:BUNDLE 0 1\r\na=ice-options:trickle\r\n\
                      m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=ice-options:trickle renomination\r\n\
                      a=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host\r\n\
                      m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:1\r\n\
                      m=video 0 UDP/TLS/RTP/SAVPF 96\r\na=mid:2\r\n";
        let done = complete_candidates(answer);
        let secs: Vec<Vec<&str>> = sections(&done).collect();
        assert_eq!(secs.len(), 4);
        assert!(!done.contains("trickle"), "{done}");
        assert!(secs[0].contains(&"a=group:BUNDLE 0 1") && !secs[0].iter().any(|l| l.starts_with("a=candidate")));
        assert!(secs[1].contains(&"a=ice-options:renomination"), "other options stay");
        for s in &secs[1..3] {
            let c = s.iter().position(|l| l.starts_with("a=candidate:1 1 udp")).expect("candidate");
            assert_eq!(s[c + 1], "a=end-of-candidates");
            assert_eq!(s.iter().filter(|l| l.starts_with("a=candidate")).count(), 1, "not doubled");
        }
        assert!(!secs[3].iter().any(|l| l.starts_with("a=candidate") || *l == "a=end-of-candidates"), "rejected");
        assert!(done.ends_with("\r\n") && !done.contains("\n\n"));
        assert_eq!(complete_candidates(&done), done, "idempotent: {done}");
    }
}
