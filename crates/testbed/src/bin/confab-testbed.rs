//! `confab-testbed`: the testbed's synthetic participant from the command line, so programs that
//! are not Rust (the C and Python embedding examples, benchmark scripts) can put a real WebRTC
//! client into a room.
//!
//! `confab-testbed join --voice-url ws://127.0.0.1:PORT/voice --token VOICE_TOKEN [--tone 440]
//! [--camera ff0000] [--video-slots N] [--seconds 5]` joins, speaks the tone (silence without one)
//! and shows the camera colour (no camera without one) for the given time, leaves, and exits 0; any
//! failure exits non-zero with a message on stderr.
//!
//! `confab-testbed bench crates/testbed/scenarios/X.toml [--server-url URL [--server-pid PID]]
//! [--confab PATH] [--out results]` runs a load scenario (see `testbed::bench`) and writes
//! `<out>/<scenario>-<date>.md` with its JSON and SVG plots; it exits non-zero if the run's figures
//! are not sane (zero where they must not be, loss ≥ 1%).

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use testbed::bench::{BenchArgs, run};
use testbed::{CameraOptions, VoiceClient, VoiceOptions};

/// Thousands of synthetic viewers allocate per request: glibc's malloc cost more than the work.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "confab-testbed", version, about = "Synthetic confab voice participants")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Join a room with a voice token, stay a while, leave.
    Join {
        /// The voice gateway, e.g. ws://127.0.0.1:8080/voice.
        #[arg(long)]
        voice_url: String,
        /// A voice token (from the chat API or an embedding application's mint call).
        #[arg(long, env = "CONFAB_VOICE_TOKEN", hide_env_values = true)]
        token: String,
        /// The tone to speak, in Hz; silence when absent.
        #[arg(long)]
        tone: Option<f32>,
        /// Publish a camera of this colour, as hex RRGGBB (e.g. ff0000); no camera when absent.
        #[arg(long, value_parser = parse_rgb)]
        camera: Option<[u8; 3]>,
        /// Receive video slots to offer; default: as many as the server's ready allows.
        #[arg(long)]
        video_slots: Option<usize>,
        /// How long to stay once media is connected.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Bound on each network step of the join.
        #[arg(long, default_value_t = 10.0)]
        timeout: f64,
    },
    /// Run a load scenario against a server and write the report.
    Bench {
        /// The scenario, e.g. crates/testbed/scenarios/smoke.toml.
        scenario: PathBuf,
        /// Benchmark this running server (http://HOST:PORT) instead of starting one per step.
        #[arg(long)]
        server_url: Option<String>,
        /// The given server's PID, to sample its CPU and memory.
        #[arg(long, requires = "server_url")]
        server_pid: Option<u32>,
        /// The confab binary to start; default: the one next to confab-testbed.
        #[arg(long)]
        confab: Option<PathBuf>,
        /// Where the report goes.
        #[arg(long, default_value = "results")]
        out: PathBuf,
        /// Where criterion's estimates are read from, if present.
        #[arg(long, default_value = "target/criterion")]
        criterion_dir: PathBuf,
    },
    /// confab's forwarding against Janus's on the same light load, in the same run; writes
    /// results/<name>-<date>.md.
    Forward {
        /// The scenario, e.g. crates/testbed/scenarios/forward-janus.toml.
        scenario: PathBuf,
        /// The confab binary to start; default: the one next to confab-testbed.
        #[arg(long)]
        confab: Option<PathBuf>,
        #[arg(long, default_value = "results")]
        out: PathBuf,
    },
    /// A long run of chat, voice churn and a live stream against one started server, sampling its
    /// memory, descriptors, threads and counts; writes results/soak-<date>.md.
    Soak {
        /// Minutes of load.
        #[arg(long, default_value_t = 30.0)]
        minutes: f64,
        /// Minutes after the start not judged for memory drift.
        #[arg(long, default_value_t = 5.0)]
        warmup_minutes: f64,
        /// Seconds of quiet after the load, before the counts are compared with the baseline.
        #[arg(long, default_value_t = 60.0)]
        cooldown_secs: f64,
        #[arg(long, default_value_t = 40)]
        chat_clients: usize,
        #[arg(long, default_value_t = 3)]
        voice_rooms: usize,
        #[arg(long, default_value_t = 4)]
        per_room: usize,
        #[arg(long, default_value_t = 20)]
        viewers: usize,
        /// The confab binary to start; default: the one next to confab-testbed.
        #[arg(long)]
        confab: Option<PathBuf>,
        #[arg(long, default_value = "results")]
        out: PathBuf,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Bench { scenario, server_url, server_pid, confab, out, criterion_dir } => {
            if std::env::var_os("RUST_LOG").is_some() {
                tracing_subscriber::fmt()
                    .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                    .with_writer(std::io::stderr)
                    .init();
            }
            let quoted: Vec<String> =
                std::env::args().map(|a| if a.contains(' ') { format!("'{a}'") } else { a }).collect();
            let command = quoted.join(" ");
            let args = BenchArgs { scenario, server_url, server_pid, confab, out, criterion_dir, command };
            // Interrupted, the run is dropped, and with it the server it started (killed on drop).
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            let (report, sane) = tokio::select! {
                done = run(args) => done?,
                _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted"),
                _ = term.recv() => anyhow::bail!("terminated"),
            };
            println!("report: {}", report.display());
            if !sane {
                anyhow::bail!("the figures are not sane: see the end of {}", report.display());
            }
            Ok(())
        }
        Command::Forward { scenario, confab, out } => {
            if std::env::var_os("RUST_LOG").is_some() {
                tracing_subscriber::fmt()
                    .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                    .with_writer(std::io::stderr)
                    .init();
            }
            let command = std::env::args().collect::<Vec<_>>().join(" ");
            let args = testbed::forward::ForwardArgs { scenario, confab, out, command };
            let (report, sane) = testbed::forward::run(args).await?;
            println!("report: {}", report.display());
            if !sane {
                anyhow::bail!("the figures are not sane: see the end of {}", report.display());
            }
            Ok(())
        }
        Command::Soak {
            minutes,
            warmup_minutes,
            cooldown_secs,
            chat_clients,
            voice_rooms,
            per_room,
            viewers,
            confab,
            out,
        } => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "info,rtc=warn,rtc_ice=warn,rtc_dtls=error,webrtc=warn".into()),
                )
                .with_writer(std::io::stderr)
                .init();
            let command = std::env::args().collect::<Vec<_>>().join(" ");
            let args = testbed::soak::SoakArgs {
                confab,
                minutes,
                cooldown_secs,
                warmup_minutes,
                chat_clients,
                voice_rooms: voice_rooms.max(1),
                per_room,
                viewers,
                out,
                command,
            };
            let (report, passed) = testbed::soak::run(args).await?;
            println!("report: {}", report.display());
            if !passed {
                anyhow::bail!("a soak goal was not met: see {}", report.display());
            }
            Ok(())
        }
        Command::Join { voice_url, token, tone, camera, video_slots, seconds, timeout } => {
            let opts = VoiceOptions {
                tone_hz: tone,
                camera: camera.map(CameraOptions::colour),
                video_slots,
                timeout: secs("--timeout", timeout)?,
                ..VoiceOptions::default()
            };
            let stay = secs("--seconds", seconds)?;
            let client = VoiceClient::join_with_voice_token(&voice_url, &token, opts)
                .await
                .with_context(|| format!("joining {voice_url}"))?;
            let s = client.session();
            println!("joined room {} as user {} ({} in the room)", s.room_id, s.user_id, s.participants.len());
            tokio::time::sleep(stay).await;
            let heard = client.received_packets();
            let cam = client.camera_control();
            let (filmed, keyframes, requests) =
                (client.video_frames_sent(), cam.keyframes_sent.load(Relaxed), cam.keyframe_requests.load(Relaxed));
            let videos = client.video_tracks();
            client.leave().await.context("leaving")?;
            client.close().await?;
            println!("left after {seconds} s; received {heard} audio RTP packets");
            println!("sent {filmed} video frames ({keyframes} keyframes, {requests} keyframe requests received)");
            for t in videos {
                let picture = t.mid.as_deref().and_then(|m| client.latest_picture(m));
                let size = picture.as_ref().map_or("none".into(), |p| format!("{}x{}", p.width, p.height));
                let centre = picture.and_then(|p| p.centre_rgb()).map(|[r, g, b]| format!("{r:02x}{g:02x}{b:02x}"));
                println!(
                    "video slot {}: {} frames decoded ({} keyframes), {} decode errors, {} skipped, {} PLIs sent, \
                     last picture {size} centre colour {}",
                    t.mid.as_deref().unwrap_or("?"),
                    t.decoded,
                    t.keyframes,
                    t.decode_errors,
                    t.skipped,
                    t.plis_sent,
                    centre.as_deref().unwrap_or("none")
                );
            }
            Ok(())
        }
    }
}

fn parse_rgb(hex: &str) -> Result<[u8; 3], String> {
    let hex = hex.trim_start_matches('#');
    let bad = || format!("{hex:?} is not a colour in hex RRGGBB");
    if hex.len() != 6 || !hex.is_ascii() {
        return Err(bad());
    }
    let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| bad());
    Ok([byte(0)?, byte(2)?, byte(4)?])
}

fn secs(flag: &str, v: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(v).with_context(|| format!("{flag} must be a non-negative number of seconds"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_parse() {
        assert_eq!(parse_rgb("ff0000"), Ok([255, 0, 0]));
        assert_eq!(parse_rgb("#00A0ff"), Ok([0, 160, 255]));
        for bad in ["", "fff", "ff00000", "gg0000", "ff00é"] {
            assert!(parse_rgb(bad).is_err(), "{bad}");
        }
    }
}
