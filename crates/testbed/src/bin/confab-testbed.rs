//! `confab-testbed`: the testbed's synthetic participant from the command line, so programs that
//! are not Rust (the C and Python embedding examples, benchmark scripts) can put a real WebRTC
//! client into a room.
//!
//! `confab-testbed join --voice-url ws://127.0.0.1:PORT/voice --token VOICE_TOKEN [--tone 440] [--seconds 5]`
//! joins, speaks the tone (silence without one) for the given time, leaves, and exits 0; any
//! failure exits non-zero with a message on stderr.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::time::Duration;
use testbed::{VoiceClient, VoiceOptions};

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
        /// How long to stay once media is connected.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Bound on each network step of the join.
        #[arg(long, default_value_t = 10.0)]
        timeout: f64,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Join { voice_url, token, tone, seconds, timeout } => {
            let opts = VoiceOptions { tone_hz: tone, timeout: secs("--timeout", timeout)?, ..VoiceOptions::default() };
            let stay = secs("--seconds", seconds)?;
            let client = VoiceClient::join_with_voice_token(&voice_url, &token, opts)
                .await
                .with_context(|| format!("joining {voice_url}"))?;
            let s = client.session();
            println!("joined room {} as user {} ({} in the room)", s.room_id, s.user_id, s.participants.len());
            tokio::time::sleep(stay).await;
            let heard = client.received_packets();
            client.leave().await.context("leaving")?;
            client.close().await?;
            println!("left after {seconds} s; received {heard} RTP packets");
            Ok(())
        }
    }
}

fn secs(flag: &str, v: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(v).with_context(|| format!("{flag} must be a non-negative number of seconds"))
}
