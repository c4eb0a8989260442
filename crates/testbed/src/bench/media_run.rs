//! One media step: R rooms × P participants in one mode on a fresh server. Probes (the first
//! participant of each room) join first; the others join at the scenario's rate; after a warm-up,
//! the measurement window opens (server and client counters snapshotted, latency samples reset)
//! and each probe switches tone and camera colour every second; then everyone leaves.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures_util::{StreamExt, stream};
use indicatif::ProgressBar;
use signaling::protocol::RoomMode;

use super::api::{Account, Api};
use super::media_collect::{ClientTotals, collect};
use super::procstat::{Sampler, load_and_cpus, machine_cores, machine_ticks};
use super::results::MediaStep;
use super::scenario::{MediaSweep, mode_name};
use crate::media::ReceiveOptions;
use crate::video_send::CameraOptions;
use crate::{VoiceClient, VoiceOptions};

/// The probe's two tones and colours; nobody else uses anything near them.
pub const PROBE_TONES: [f32; 2] = [700.0, 1100.0];
pub const PROBE_COLOURS: [[u8; 3]; 2] = [[255, 0, 0], [0, 0, 255]];
const PROBE_PERIOD: Duration = Duration::from_secs(1);
/// The probe speaks louder than the rest: always among the last-N, dominant in a mix.
const PROBE_DBFS: f32 = -10.0;
const OTHERS_DBFS: f32 = -26.0;
const JOIN_TIMEOUT: Duration = Duration::from_secs(20);
/// ICE check pacing of the load clients: a browser's (~50 ms, first check at once), not webrtc-rs'
/// default 200 ms, which would dominate join times.
const ICE_CHECK_INTERVAL: Duration = Duration::from_millis(20);
/// Join errors kept for the report.
const MAX_ERRORS: usize = 5;

/// What participant `p` of a room of `n` does.
#[derive(Debug, Clone, Copy)]
pub struct Role {
    pub mic: bool,
    pub camera: bool,
    /// Shares a screen (see `MediaSweep::share`).
    pub share: bool,
    pub decoder: bool,
    pub probe: bool,
}

pub fn role(sweep: &MediaSweep, n: usize, p: usize) -> Role {
    let mics = (n as f64 * sweep.mic_share).ceil() as usize;
    let cameras = (n as f64 * sweep.camera_share).round() as usize;
    let decoders = sweep.decoders_per_room.clamp(1, n - 1);
    let share = sweep.share.is_some() && p == 1.min(n - 1);
    Role { mic: p < mics, camera: p < cameras, share, decoder: p >= n - decoders, probe: p == 0 && mics > 0 }
}

/// A tone for non-probe speaker `k`: 300-3000 Hz, integer Hz, ≥ 150 Hz from the probe's tones.
fn tone(k: usize) -> f32 {
    let candidates: Vec<f32> = (0..28)
        .map(|i| 300.0 + 100.0 * i as f32)
        .filter(|f| PROBE_TONES.iter().all(|p| (p - f).abs() >= 150.0))
        .collect();
    candidates[k % candidates.len()]
}

/// Greys far from both probe colours; a few, as each is encoded once and replayed by every camera
/// showing it.
const GREYS: [[u8; 3]; 4] = [[70, 70, 70], [110, 110, 110], [150, 150, 150], [190, 190, 190]];

fn grey(k: usize) -> [u8; 3] {
    GREYS[k % GREYS.len()]
}

fn options(sweep: &MediaSweep, role: Role, p: usize) -> VoiceOptions {
    let cam = &sweep.camera;
    let colour = if role.probe { PROBE_COLOURS[0] } else { grey(p) };
    let camera = role.camera.then(|| CameraOptions {
        colour,
        width: cam.width,
        height: cam.height,
        fps: cam.fps,
        bitrate_kbps: cam.bitrate_kbps,
        noise: cam.noise,
        // The probe switches colour every second, live; the others replay their loop.
        replay: !role.probe,
        ..CameraOptions::default()
    });
    // A slide: near-white, a little noise (the cursor, a clock), replayed like the cameras.
    let share = sweep.share.as_ref().filter(|_| role.share).map(|s| CameraOptions {
        colour: [235, 235, 235],
        width: s.width,
        height: s.height,
        fps: s.fps,
        bitrate_kbps: s.bitrate_kbps,
        noise: s.noise,
        replay: true,
        ..CameraOptions::default()
    });
    let receive = ReceiveOptions {
        decode: role.decoder,
        watch_tones: role.decoder.then_some(PROBE_TONES),
        watch_colours: role.decoder.then_some(PROBE_COLOURS),
    };
    VoiceOptions {
        tone_hz: Some(if role.probe { PROBE_TONES[0] } else { tone(p) }),
        level_dbfs: if role.probe { PROBE_DBFS } else { OTHERS_DBFS },
        slots: sweep.audio_slots,
        // An audio-only scenario's clients show no video, as an audio-only app would.
        video_slots: (sweep.camera_share == 0.0).then_some(0),
        send: role.mic,
        camera,
        share,
        share_slots: None,
        timeout: JOIN_TIMEOUT,
        receive,
        replay_audio: true,
        probe_tones: role.probe.then_some(PROBE_TONES),
        probe_colours: role.probe.then_some(PROBE_COLOURS),
        ice_check_interval: Some(ICE_CHECK_INTERVAL),
    }
}

/// Encodes the replayed cameras' loops before anyone joins, so that work is not measured.
async fn prepare_camera_loops(sweep: &MediaSweep, participants: usize) -> Result<()> {
    for p in 0..participants {
        let role = role(sweep, participants, p);
        let opts = options(sweep, role, p);
        for camera in [opts.camera, opts.share].into_iter().flatten().filter(|c| c.replay) {
            crate::camera_loop::get(&camera, camera.colour).await.context("encoding a camera loop")?;
        }
    }
    Ok(())
}

/// A joined participant and where it sits.
pub struct Member {
    pub room: usize,
    pub p: usize,
    pub role: Role,
    pub client: VoiceClient,
}

/// Runs one step; `channels[r]` is room r's voice channel (in `mode`), `accounts` at least R × P.
#[allow(clippy::too_many_arguments)]
pub async fn run_step(
    api: &Api,
    server_pid: Option<u32>,
    sweep: &MediaSweep,
    mode: RoomMode,
    participants: usize,
    channels: &[String],
    accounts: &[Account],
    pb: &ProgressBar,
) -> Result<MediaStep> {
    let rooms = sweep.rooms;
    let server_sampler = server_pid.map(Sampler::start);
    let client_sampler = Sampler::start(std::process::id());
    let mut step = MediaStep {
        sweep: sweep.name.clone(),
        mode: mode_name(mode).into(),
        rooms,
        participants,
        clients: rooms * participants,
        ..MediaStep::default()
    };
    let seats: Vec<(usize, usize)> = (0..participants).flat_map(|p| (0..rooms).map(move |r| (r, p))).collect();
    let (probes, rest) = seats.split_at(rooms);
    pb.set_message(format!("{} {} P={participants}: encoding camera loops", sweep.name, step.mode));
    prepare_camera_loops(sweep, participants).await?;
    pb.set_message(format!("{} {} P={participants}: joining", sweep.name, step.mode));
    let mut members = Vec::new();
    let mut errors = Vec::new();
    for (batch, paced) in [(probes, false), (rest, true)] {
        let joined = join_all(api, sweep, participants, channels, accounts, batch, paced, pb).await;
        for j in joined {
            match j {
                Ok(m) => members.push(m),
                Err(e) if errors.len() < MAX_ERRORS => errors.push(format!("{e:#}")),
                Err(_) => {}
            }
        }
    }
    step.joined = members.len();
    step.join_errors = errors;
    for m in &members {
        step.mic_publishers += usize::from(m.role.mic);
        step.camera_publishers += usize::from(m.role.camera);
        step.decoders += usize::from(m.role.decoder);
    }

    pb.set_message(format!("{} {} P={participants}: warming up", sweep.name, step.mode));
    tokio::time::sleep(Duration::from_secs_f64(sweep.warmup_secs)).await;

    // The window.
    pb.set_message(format!("{} {} P={participants}: measuring", sweep.name, step.mode));
    let stats_before = api.voice_stats().await.context("server stats at the window's start")?;
    let totals_before = ClientTotals::of(&members);
    members.iter().for_each(|m| m.client.reset_window());
    let machine_before = machine_ticks();
    let start = Instant::now();
    let window = Duration::from_secs_f64(sweep.duration_secs);
    let mut which = 0;
    while start.elapsed() < window {
        which = 1 - which;
        for m in members.iter().filter(|m| m.role.probe) {
            m.client.set_tone(Some(PROBE_TONES[which]));
            m.client.set_camera_colour(PROBE_COLOURS[which]);
        }
        tokio::time::sleep(PROBE_PERIOD.min(window.saturating_sub(start.elapsed()))).await;
        pb.tick();
    }
    let end = Instant::now();
    let machine_after = machine_ticks();
    let stats_after = api.voice_stats().await.context("server stats at the window's end")?;
    let totals_after = ClientTotals::of(&members);
    step.window_secs = end.duration_since(start).as_secs_f64();
    let server = server_sampler.as_ref().map(|s| s.window(start, end)).unwrap_or_default();
    let client = client_sampler.window(start, end);
    collect(&mut step, &members, (&totals_before, &totals_after), (&stats_before, &stats_after), (&server, &client));
    let (load, cpus) = load_and_cpus();
    step.load_avg = load;
    step.machine_cores = machine_cores(machine_before, machine_after, cpus);
    step.other_cores = (step.machine_cores - step.server.cpu_cores_avg - step.client.cpu_cores_avg).max(0.0);
    step.saturated = step.machine_cores >= 0.9 * cpus as f64;

    pb.set_message(format!("{} {} P={participants}: leaving", sweep.name, step.mode));
    stream::iter(members)
        .for_each_concurrent(64, |m| async move {
            let _ = m.client.leave().await;
            let _ = m.client.close().await;
        })
        .await;
    Ok(step)
}

/// Joins `seats` (room, participant) concurrently, paced at the sweep's rate if `paced`.
#[allow(clippy::too_many_arguments)]
async fn join_all(
    api: &Api,
    sweep: &MediaSweep,
    participants: usize,
    channels: &[String],
    accounts: &[Account],
    seats: &[(usize, usize)],
    paced: bool,
    pb: &ProgressBar,
) -> Vec<Result<Member>> {
    let interval = Duration::from_secs_f64(1.0 / sweep.join_rate);
    let start = Instant::now();
    let done = Arc::new(AtomicUsize::new(0));
    let total = seats.len();
    let joins = seats.iter().enumerate().map(|(i, &(room, p))| {
        let role = role(sweep, participants, p);
        let opts = options(sweep, role, p);
        let account = accounts.get(room * participants + p).cloned();
        let channel = channels.get(room).cloned();
        let base = api.base.clone();
        let pb = pb.clone();
        let done = done.clone();
        async move {
            if paced {
                tokio::time::sleep_until((start + interval * i as u32).into()).await;
            }
            let (account, channel) = account.zip(channel).context("not enough accounts or channels")?;
            let client = VoiceClient::join(&base, &account.token, &channel, opts)
                .await
                .with_context(|| format!("room {room} participant {p}"))?;
            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
            pb.set_message(format!("{} P={participants}: joined {n}/{total}", sweep.name));
            anyhow::Ok(Member { room, p, role, client })
        }
    });
    let members: Vec<Result<Member>> = stream::iter(joins).buffer_unordered(256).collect().await;
    members
}
