//! The audio mix-minus, driven by a test clock: synthetic participants send Opus-encoded tones,
//! every output stream is decoded and checked for which tones it carries (Goertzel).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mcu::mixminus::{JitterBuffer, MixConfig, MixError, MixMinus, Mixed, Push, Slot, TICK};
use testbed::opus_io::{Decoder, Encoder};
use testbed::tone::{FRAME_SAMPLES, ToneGenerator, detect_tones, tone_fraction};

const TONES: [f32; 3] = [500.0, 800.0, 1250.0];
const NAMES: [&str; 3] = ["a", "b", "c"];
/// Frames analysed per check: start-up, jitter delay and the two codecs' delays are behind us.
const WINDOW: usize = 20;

/// A participant's microphone: a tone, or silence, as 20 ms Opus packets with sequence numbers.
struct Mic {
    tone: Option<ToneGenerator>,
    enc: Encoder,
    seq: u64,
}

impl Mic {
    fn new(freq: Option<f32>) -> Self {
        Mic { tone: freq.map(|f| ToneGenerator::new(f, -20.0)), enc: Encoder::new().unwrap(), seq: 0 }
    }

    fn next(&mut self) -> (u64, Vec<u8>) {
        let pcm = self.tone.as_mut().map_or([0; FRAME_SAMPLES], ToneGenerator::next_frame);
        self.seq += 1;
        (self.seq, self.enc.encode(&pcm).unwrap())
    }
}

/// A room on a test clock: mics send one packet per tick, every output is decoded per listener.
struct Room {
    mix: MixMinus<&'static str>,
    now: Instant,
    mics: BTreeMap<&'static str, Mic>,
    ears: BTreeMap<&'static str, (Decoder, Vec<i16>)>,
}

impl Room {
    fn new(cfg: MixConfig, mics: &[(&'static str, Option<f32>)]) -> Self {
        let now = Instant::now();
        let mut room =
            Room { mix: MixMinus::new(cfg, now).unwrap(), now, mics: BTreeMap::new(), ears: BTreeMap::new() };
        for &(name, freq) in mics {
            room.mix.add(name).unwrap();
            room.mics.insert(name, Mic::new(freq));
        }
        room
    }

    fn three_tones() -> Self {
        Room::new(MixConfig::default(), &[("a", Some(TONES[0])), ("b", Some(TONES[1])), ("c", Some(TONES[2]))])
    }

    /// One tick: every mic present sends its next packet, the mix runs, each output is decoded.
    fn step(&mut self) -> Mixed<&'static str> {
        for (name, mic) in &mut self.mics {
            let (seq, packet) = mic.next();
            self.mix.push(name, seq, &packet);
        }
        self.tick()
    }

    fn tick(&mut self) -> Mixed<&'static str> {
        let out = self.mix.tick(self.now).expect("a tick is due");
        assert_eq!(out.packets.len(), self.mix.len(), "one packet per participant");
        for (name, packet) in &out.packets {
            let (dec, pcm) = self.ears.entry(name).or_insert_with(|| (Decoder::new().unwrap(), Vec::new()));
            let frame = dec.decode(packet).expect("every output decodes");
            assert_eq!(frame.len(), FRAME_SAMPLES);
            pcm.extend_from_slice(frame);
        }
        self.now += TICK;
        out
    }

    fn run(&mut self, ticks: usize) {
        for _ in 0..ticks {
            self.step();
        }
    }

    /// Tones in the last [`WINDOW`] frames `name` received.
    fn hears(&self, name: &str) -> Vec<f32> {
        let pcm = &self.ears[name].1;
        detect_tones(&pcm[pcm.len() - WINDOW * FRAME_SAMPLES..], &TONES)
    }

    fn fraction(&self, name: &str, freq: f32) -> f32 {
        let pcm = &self.ears[name].1;
        tone_fraction(&pcm[pcm.len() - WINDOW * FRAME_SAMPLES..], freq, 48_000.0).unwrap_or(0.0)
    }
}

#[test]
fn each_participant_hears_the_others_and_not_itself() {
    let mut room = Room::three_tones();
    room.run(40);
    assert_eq!(room.hears("a"), vec![800.0, 1250.0]);
    assert_eq!(room.hears("b"), vec![500.0, 1250.0]);
    assert_eq!(room.hears("c"), vec![500.0, 800.0]);
    // Subtraction is exact (no clipping at -20 dBFS): one's own voice is not even faintly there.
    for (name, own) in NAMES.iter().zip(TONES) {
        assert!(room.fraction(name, own) < 0.001, "{name} hears itself: {}", room.fraction(name, own));
    }
    let s = room.mix.stats();
    assert_eq!((s.decoded, s.concealed, s.malformed, s.dropped_late), (3 * (40 - 2), 0, 0, 0));
    // Everyone speaks: three personal encoders, primed once each, plus the shared one.
    assert_eq!((s.encoded_personal, s.encoded_shared, s.switches_in, s.encoded_priming), (3 * 38, 40, 3, 6));
}

#[test]
fn a_muted_participant_is_heard_by_nobody() {
    let mut room = Room::three_tones();
    assert!(room.mix.set_muted(&"c", true));
    room.run(40);
    assert_eq!(room.hears("a"), vec![800.0]);
    assert_eq!(room.hears("b"), vec![500.0]);
    assert_eq!(room.hears("c"), vec![500.0, 800.0]);
    assert_eq!(room.mix.push(&"c", 1000, &[0xf8, 0xff, 0xfe]), Push::Muted);
    assert_eq!(room.mix.stats().dropped_muted, 41);

    room.mix.set_muted(&"c", false);
    room.run(40);
    assert_eq!(room.hears("a"), vec![800.0, 1250.0]);
    assert_eq!(room.hears("b"), vec![500.0, 1250.0]);
}

#[test]
fn a_participant_that_stops_sending_fades_to_silence_after_plc() {
    let mut room = Room::three_tones();
    room.run(40);
    let before = room.mix.stats();
    room.mics.remove("c");
    room.run(40);
    let s = room.mix.stats();
    assert_eq!(s.concealed - before.concealed, 3, "plc_frames concealed, then silence");
    assert!(!room.mix.is_mixed(&"c"));
    assert_eq!(room.hears("a"), vec![800.0]);
    assert_eq!(room.hears("b"), vec![500.0]);
    assert_eq!(room.hears("c"), vec![500.0, 800.0]);
    // c left the mix: it now gets the full mix, a and b keep their own streams.
    assert_eq!(s.switches_out, 1);
}

#[test]
fn a_lost_packet_is_concealed_once() {
    let mut room = Room::three_tones();
    room.run(20);
    room.mics.get_mut("a").unwrap().next(); // lost on the way
    room.run(30);
    let s = room.mix.stats();
    assert_eq!((s.concealed, s.dropped_late, s.decoded), (1, 0, 3 * 48 - 1));
    assert_eq!(room.hears("b"), vec![500.0, 1250.0]);
}

#[test]
fn late_and_duplicate_packets_are_dropped_and_the_buffer_is_bounded() {
    let mut room = Room::three_tones();
    room.run(10);
    let mic = room.mics.get_mut("a").unwrap();
    let (seq, packet) = mic.next();
    assert_eq!(room.mix.push(&"a", seq, &packet), Push::Queued);
    assert_eq!(room.mix.push(&"a", seq, &packet), Push::Duplicate);
    // a's packets up to seq - 3 have been played (two more wait out the jitter delay).
    assert_eq!(room.mix.push(&"a", seq - 4, &packet), Push::Late);
    assert_eq!(room.mix.push(&"a", 1, &packet), Push::Late);
    room.tick();
    let s = room.mix.stats();
    assert_eq!((s.dropped_late, s.dropped_duplicate, s.concealed), (2, 1, 0));

    // A burst of 20 packets before the next tick: b's buffer (one packet queued) keeps the newest 8.
    let burst: Vec<_> = (0..20).map(|_| room.mics.get_mut("b").unwrap().next()).collect();
    let outcomes: Vec<_> = burst.iter().map(|(seq, p)| room.mix.push(&"b", *seq, p)).collect();
    assert!(outcomes[..7].iter().all(|o| *o == Push::Queued), "{outcomes:?}");
    assert!(outcomes[7..].iter().all(|o| *o == Push::Overflow(1)), "{outcomes:?}");
    assert_eq!(room.mix.stats().dropped_overflow, 13);
    // Playout jumps to the oldest packet kept and goes on without concealing anything.
    let decoded = room.mix.stats().decoded;
    room.run(8);
    assert_eq!(room.mix.stats().decoded - decoded, 3 * 8);
    assert_eq!(room.mix.stats().concealed, 0);
}

#[test]
fn a_buffer_left_deep_by_a_burst_drains_back_to_the_delay() {
    let mut jb = JitterBuffer::new(8, 2, 3);
    for seq in 1..=8u64 {
        assert_eq!(jb.push(seq, &[0]), Push::Queued);
    }
    let (mut seq, mut skipped) = (8, 0);
    for _ in 0..300 {
        seq += 1;
        skipped += usize::from(jb.push(seq, &[0]) == Push::Overflow(1));
        jb.pop();
    }
    // 3 dropped at the cap while waiting out the delay, then one a second (50 ticks) from 8 queued
    // down to the delay's 2 + 1.
    assert_eq!(jb.len(), 3);
    assert_eq!(skipped, 3 + 4);
}

#[test]
fn reordered_packets_within_the_jitter_window_play_in_order() {
    // Ordering itself, on the buffer alone.
    let mut jb = JitterBuffer::new(8, 0, 3);
    for seq in [12u64, 10, 11] {
        assert_eq!(jb.push(seq, &[seq as u8]), Push::Queued);
    }
    for seq in 10u8..=12 {
        assert_eq!(jb.pop(), Slot::Packet(vec![seq]));
    }
    jb.push(14, &[14]);
    assert_eq!(jb.pop(), Slot::Missing { next: Some(&[14u8][..]) }, "13 is missing; 14 may carry its FEC");
    assert_eq!(jb.pop(), Slot::Packet(vec![14]));

    // End to end: a's packets arrive in the order 3, 1, 2, 6, 4, 5, ... one per tick.
    let mut room = Room::new(MixConfig::default(), &[("a", Some(500.0)), ("b", None)]);
    let mut a = room.mics.remove("a").unwrap();
    for _ in 0..20 {
        let block = [a.next(), a.next(), a.next()];
        for (seq, packet) in [&block[2], &block[0], &block[1]] {
            assert_eq!(room.mix.push(&"a", *seq, packet), Push::Queued);
            room.step();
        }
    }
    let s = room.mix.stats();
    assert_eq!((s.dropped_late, s.concealed), (0, 0));
    assert_eq!(s.decoded, 2 * (60 - 2), "all of a's and b's packets but two ticks of delay");
    assert_eq!(room.hears("b"), vec![500.0]);
}

#[test]
fn garbage_is_counted_and_harms_no_one_else() {
    let mut room = Room::new(MixConfig::default(), &[("a", Some(500.0)), ("listener", None)]);
    room.mix.add("noisy").unwrap();
    let mut lcg = 0x2545_f491_4f6c_dd1du64;
    let mut random = |len: usize| -> Vec<u8> {
        (0..len)
            .map(|_| {
                lcg = lcg.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                (lcg >> 56) as u8
            })
            .collect()
    };
    assert_eq!(room.mix.push(&"noisy", 0, &[]), Push::Malformed);
    assert_eq!(room.mix.push(&"noisy", 0, &[0; 2000]), Push::Malformed);
    for seq in 1..=60u64 {
        let packet = match seq % 4 {
            0 => vec![0x03, 0x00],             // code 3 with zero frames: invalid
            1 => vec![0xff; 7],                // 20 ms CELT, code 3, 63 frames: too long
            2 => vec![0x0b, 0xaa, 0x55],       // a 60 ms SILK frame: not 20 ms
            _ => random(1 + seq as usize * 7), // anything
        };
        room.mix.push(&"noisy", seq, &packet);
        room.step();
    }
    let s = room.mix.stats();
    assert!(s.malformed >= 2 + 45, "{s:?}");
    assert_eq!(room.hears("listener"), vec![500.0]);
    assert!(room.fraction("listener", 500.0) > 0.5, "garbage decoded as noise stays small or is gated");
}

#[test]
fn a_silent_room_sends_everyone_one_shared_valid_stream() {
    let names = ["p0", "p1", "p2", "p3", "p4"];
    let mut room = Room::new(MixConfig::default(), &[("p0", None), ("p1", None), ("p2", None)]);
    room.mix.add("p3").unwrap(); // these two send nothing at all
    room.mix.add("p4").unwrap();
    for _ in 0..30 {
        let out = room.step(); // decodes every packet
        let first = &out.packets[0].1;
        assert!(out.packets.iter().all(|(_, p)| Arc::ptr_eq(p, first)), "one shared packet");
        assert_eq!(out.packets.iter().map(|(k, _)| *k).collect::<Vec<_>>(), names);
    }
    for name in names {
        assert!(room.hears(name).is_empty());
    }
    let s = room.mix.stats();
    assert_eq!((s.encoded_shared, s.encoded_personal, s.switches_in), (30, 0, 0));
}

#[test]
fn non_speakers_share_one_encode_in_a_big_room() {
    let mut mics: Vec<(&'static str, Option<f32>)> = vec![("s1", Some(500.0)), ("s2", Some(1250.0))];
    let names: Vec<&'static str> = (0..23).map(|i| &*format!("q{i:02}").leak()).collect();
    mics.extend(names.iter().map(|&n| (n, None)));
    let mut room = Room::new(MixConfig::default(), &mics);
    room.run(20);
    let before = room.mix.stats();
    for _ in 0..20 {
        let out = room.step();
        let shared = &out.packets.iter().find(|(k, _)| *k == "q00").unwrap().1;
        let sharing = out.packets.iter().filter(|(_, p)| Arc::ptr_eq(p, shared)).count();
        assert_eq!(sharing, 23);
    }
    let s = room.mix.stats();
    assert_eq!(s.encoded_personal - before.encoded_personal, 2 * 20);
    assert_eq!(s.encoded_shared - before.encoded_shared, 20);
    assert_eq!(room.hears("s1"), vec![1250.0]);
    assert_eq!(room.hears("s2"), vec![500.0]);
    assert_eq!(room.hears("q17"), vec![500.0, 1250.0]);
}

#[test]
fn a_speaker_moves_to_the_shared_stream_after_the_hangover_and_back() {
    let mut room = Room::new(MixConfig::default(), &[("a", Some(500.0)), ("b", None)]);
    room.run(30);
    assert!(room.mix.is_mixed(&"a"));
    assert_eq!(room.hears("b"), vec![500.0]);
    room.mics.get_mut("a").unwrap().tone = None; // a goes quiet but keeps sending
    let mut ticks = 0;
    while room.mix.is_mixed(&"a") {
        room.step();
        ticks += 1;
        assert!(ticks <= 2 + 10 + 3, "out of the mix within jitter + hangover + codec tail");
    }
    assert!(ticks > 10, "not before the hangover: {ticks}");
    let s = room.mix.stats();
    assert_eq!((s.switches_in, s.switches_out, s.encoded_priming), (1, 1, 2));
    room.mics.get_mut("a").unwrap().tone = Some(ToneGenerator::new(800.0, -20.0));
    room.run(40);
    assert_eq!(room.hears("b"), vec![800.0]);
    assert!(room.hears("a").is_empty());
    assert_eq!(room.mix.stats().switches_in, 2);
}

#[test]
fn remove_frees_the_participant() {
    let mut room = Room::three_tones();
    room.run(30);
    assert!(room.mix.remove(&"b"));
    room.mics.remove("b");
    assert!(!room.mix.remove(&"b"));
    assert_eq!(room.mix.push(&"b", 100, &[0xf8, 0xff, 0xfe]), Push::Unknown);
    let out = room.step();
    assert_eq!(out.packets.iter().map(|(k, _)| *k).collect::<Vec<_>>(), ["a", "c"]);
    room.run(30);
    assert_eq!(room.hears("a"), vec![1250.0]);
    assert_eq!(room.hears("c"), vec![500.0]);

    room.mix.add("b").unwrap();
    assert!(matches!(room.mix.add("b"), Err(MixError::AlreadyPresent)));
    let cfg = MixConfig { max_participants: 1, ..MixConfig::default() };
    let mut small = MixMinus::new(cfg, room.now).unwrap();
    small.add(1).unwrap();
    assert!(matches!(small.add(2), Err(MixError::Full(1))));
}

#[test]
fn the_clock_drives_ticks_catching_up_a_little_and_skipping_a_lot() {
    fn runs_in_a_task<T: Send + 'static>() {}
    runs_in_a_task::<MixMinus<u64>>();

    let t0 = Instant::now();
    let ms = Duration::from_millis;
    let mut mix = MixMinus::new(MixConfig::default(), t0).unwrap();
    mix.add("a").unwrap();
    assert_eq!(mix.tick(t0).unwrap().frame, 0);
    assert_eq!(mix.poll_timeout(), t0 + ms(20));
    assert!(mix.tick(t0 + ms(19)).is_none(), "not due yet");
    // 30 ms late: two frames are due now, the third is not.
    let now = t0 + ms(50);
    assert_eq!(mix.tick(now).unwrap().frame, 1);
    assert_eq!(mix.tick(now).unwrap().frame, 2);
    assert!(mix.tick(now).is_none());
    // A one-second stall: skipped, not replayed; the frame index (RTP time) keeps wall time.
    let now = t0 + ms(1075);
    let out = mix.tick(now).unwrap();
    assert_eq!(out.frame, 53);
    assert_eq!(out.packets.len(), 1);
    assert_eq!(mix.stats().skipped_ticks, 50);
    assert_eq!(mix.poll_timeout(), t0 + ms(1080));
}

/// Not a benchmark (debug build, timed on a shared machine): the order of magnitude of a tick's
/// cost, printed next to raw Opus encode and decode times measured in the same run.
#[test]
fn cost_per_tick() {
    let frames = 100;
    let mut speaker = Mic::new(Some(500.0));
    let mut quiet = Mic::new(None);
    let loud: Vec<_> = (0..frames).map(|_| speaker.next().1).collect();
    let silent: Vec<_> = (0..frames).map(|_| quiet.next().1).collect();
    let pcm: Vec<_> = {
        let mut g = ToneGenerator::new(500.0, -20.0);
        (0..frames).map(|_| g.next_frame()).collect()
    };

    let mut buf = [0u8; 1500];
    for (signal, complexity) in [(opus::Signal::Auto, 10), (opus::Signal::Voice, 10), (opus::Signal::Voice, 5)] {
        let mut enc = opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip).unwrap();
        enc.set_bitrate(opus::Bitrate::Bits(32_000)).unwrap();
        enc.set_signal(signal).unwrap();
        enc.set_complexity(complexity).unwrap();
        let start = Instant::now();
        for f in &pcm {
            enc.encode(f, &mut buf).unwrap();
        }
        let encode = start.elapsed().as_secs_f64() * 1e6 / frames as f64;
        println!("raw opus encode, 32 kbit/s, {signal:?}, complexity {complexity}: {encode:.1} µs per 20 ms frame");
    }
    let mut dec = opus::Decoder::new(48_000, opus::Channels::Mono).unwrap();
    let mut out = [0i16; FRAME_SAMPLES];
    let start = Instant::now();
    for p in &loud {
        dec.decode(p, &mut out, false).unwrap();
    }
    let decode = start.elapsed().as_secs_f64() * 1e6 / frames as f64;
    println!("raw opus decode: {decode:.1} µs per 20 ms frame");

    for n in [3usize, 9, 25] {
        let t0 = Instant::now();
        let mut mix = MixMinus::new(MixConfig::default(), t0).unwrap();
        for k in 0..n {
            mix.add(k).unwrap();
        }
        let mut elapsed = Duration::ZERO;
        for f in 0..frames {
            for k in 0..n {
                mix.push(&k, f as u64 + 1, if k < 2 { &loud[f] } else { &silent[f] });
            }
            let start = Instant::now();
            let out = mix.tick(t0 + TICK * f as u32).unwrap();
            // Steady state only: the jitter delay and the first encoder switches are over.
            if f >= 10 {
                elapsed += start.elapsed();
            }
            assert_eq!(out.packets.len(), n);
        }
        let per_tick = elapsed.as_secs_f64() * 1e6 / (frames - 10) as f64;
        println!(
            "{n:2} participants, 2 speaking: {per_tick:6.0} µs per tick, {:5.1} µs per participant, {:.2}% of a core",
            per_tick / n as f64,
            per_tick / 200.0
        );
    }
}
