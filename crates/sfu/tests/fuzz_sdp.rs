//! SDP offers under mutation (proptest; `CONFAB_FUZZ_CASES` cases, 256 by default): real Chromium
//! offers (`corpus/`: a voice client's eight m-lines, a WHIP publisher's two) with lines dropped,
//! repeated, swapped, cut or rewritten, given to a running engine as a room peer, a WHIP ingest
//! and a WHEP viewer. Properties: no panic; an answer or an error that says what is wrong in one
//! short sentence; the engine still answers a good offer afterwards.

use proptest::prelude::*;
use sfu::{IngestMedia, MediaMode, PeerOptions, Sfu, SfuConfig};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

const VOICE: &str = include_str!("corpus/chromium-offer.sdp");
const WHIP: &str = include_str!("corpus/chromium-whip-offer.sdp");

fn cases() -> u32 {
    std::env::var("CONFAB_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
}

fn engine() -> &'static (tokio::runtime::Runtime, Sfu) {
    static ENGINE: OnceLock<(tokio::runtime::Runtime, Sfu)> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let cfg = SfuConfig { bind: "127.0.0.1:0".parse().unwrap(), ..SfuConfig::default() };
        let (sfu, _events) = rt.block_on(Sfu::start(cfg, None)).unwrap();
        (rt, sfu)
    })
}

static NEXT: AtomicU64 = AtomicU64::new(1);

#[derive(Debug, Clone, Copy, PartialEq)]
enum As {
    Peer,
    Ingest,
    Viewer,
}

/// Offers `sdp`; `Ok(())` for an answer, `Err(message)` for a refusal. Peers are removed again.
fn offer(sdp: &str, role: As) -> Result<(), String> {
    let (rt, sfu) = engine();
    let id = NEXT.fetch_add(2, Ordering::Relaxed);
    rt.block_on(async {
        let opts = PeerOptions { mode: MediaMode::Sfu, ..PeerOptions::default() };
        let sink = || Box::new(|_: IngestMedia| {}) as sfu::IngestSink;
        let answer = match role {
            As::Peer => sfu.add_peer(1, id, sdp, opts).await,
            As::Ingest => sfu.add_ingest(id, sdp, sink()).await,
            As::Viewer => {
                sfu.add_feed(id + 1);
                let a = sfu.add_viewer(id, id + 1, sdp, sink()).await;
                sfu.remove_feed(id + 1);
                a
            }
        };
        sfu.remove_peer(id);
        answer.map(|_| ()).map_err(|e| e.to_string())
    })
}

#[derive(Debug, Clone)]
enum Edit {
    Drop(usize),
    Repeat(usize),
    Swap(usize, usize),
    Cut(usize, usize),
    Rewrite(usize, String),
    Number(usize, u64),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        any::<usize>().prop_map(Edit::Drop),
        any::<usize>().prop_map(Edit::Repeat),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::Swap(a, b)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::Cut(a, b)),
        (any::<usize>(), "[a-z=:/ 0-9.-]{0,40}").prop_map(|(a, s)| Edit::Rewrite(a, s)),
        (any::<usize>(), any::<u64>()).prop_map(|(a, n)| Edit::Number(a, n)),
    ]
}

/// `sdp` with `edits` applied line by line.
fn mutate(sdp: &str, edits: &[Edit]) -> String {
    let mut lines: Vec<String> = sdp.lines().map(str::to_string).collect();
    for e in edits {
        let n = lines.len().max(1);
        match e {
            Edit::Drop(i) if !lines.is_empty() => drop(lines.remove(i % n)),
            Edit::Repeat(i) if !lines.is_empty() => lines.insert(i % n, lines[i % n].clone()),
            Edit::Swap(a, b) if !lines.is_empty() => lines.swap(a % n, b % n),
            Edit::Cut(i, at) if !lines.is_empty() => {
                let l = &mut lines[i % n];
                let cut = at % (l.len() + 1);
                if l.is_char_boundary(cut) {
                    l.truncate(cut);
                }
            }
            Edit::Rewrite(i, s) if !lines.is_empty() => {
                let l = &mut lines[i % n];
                let keep = l.find(['=', ':']).map_or(0, |k| k + 1);
                l.truncate(keep);
                l.push_str(s);
            }
            Edit::Number(i, v) if !lines.is_empty() => {
                // The first number of the line becomes `v` (ports, payload types, SSRCs, sizes).
                let l = &lines[i % n];
                if let Some(start) = l.find(|c: char| c.is_ascii_digit()) {
                    let end = l[start..].find(|c: char| !c.is_ascii_digit()).map_or(l.len(), |e| start + e);
                    lines[i % n] = format!("{}{v}{}", &l[..start], &l[end..]);
                }
            }
            _ => {}
        }
    }
    let mut out = lines.join("\r\n");
    out.push_str("\r\n");
    out
}

fn check(result: Result<(), String>, sdp: &str) {
    if let Err(message) = result {
        assert!(!message.is_empty() && message.len() < 200 && !message.contains('\n'), "{message:?}\n{sdp}");
        assert!(!message.contains("engine has stopped"), "the engine died on:\n{sdp}");
    }
}

#[test]
fn the_real_offers_are_answered() {
    offer(VOICE, As::Peer).unwrap();
    offer(WHIP, As::Ingest).unwrap();
    // Found by the noise property: the parser's multi-line text (with a heap address) was the
    // message WHIP and WHEP answered with.
    assert_eq!(offer("not sdp at all", As::Ingest).unwrap_err(), "the offer is not valid SDP");
    check(offer(VOICE, As::Viewer), VOICE);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn mutated_offers_are_answered_or_refused_clearly(
        edits in prop::collection::vec(edit(), 1..6),
        whip in any::<bool>(),
        role in prop::sample::select(&[As::Peer, As::Ingest, As::Viewer][..]),
    ) {
        let sdp = mutate(if whip { WHIP } else { VOICE }, &edits);
        check(offer(&sdp, role), &sdp);
    }

    #[test]
    fn noise_is_refused(sdp in ".{0,400}", role in prop::sample::select(&[As::Peer, As::Ingest, As::Viewer][..])) {
        let r = offer(&sdp, role);
        prop_assert!(r.is_err());
        check(r, &sdp);
    }
}

/// After everything above, in the same engine: a good offer is still answered.
#[test]
fn zz_the_engine_still_answers() {
    for e in [vec![Edit::Drop(3)], vec![Edit::Number(7, u64::MAX)], vec![Edit::Cut(40, 5)]] {
        check(offer(&mutate(VOICE, &e), As::Peer), "");
    }
    offer(VOICE, As::Peer).unwrap();
}
