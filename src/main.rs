//! `confab`: the command line. Everything here is wiring; the work lives in the crates.

mod config;

use anyhow::{Context, Result, bail};
use chat::app::App;
use chat::store::{Store, User};
use clap::{Parser, Subcommand};
use config::Config;
use sfu::{Sfu, SfuConfig};
use signaling::Voice;
use std::io::BufRead;
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "confab", version, about = "Discord-like voice, video and text chat server")]
struct Cli {
    /// TOML configuration file.
    #[arg(long, short, global = true, env = "CONFAB_CONFIG")]
    config: Option<PathBuf>,
    /// Database: `sqlite:<path>` (default `sqlite:data/confab.db`) or `postgres://…`.
    #[arg(long, global = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (HTTP API, chat gateway, voice gateway, media engine).
    Serve {
        /// Listen address, e.g. 127.0.0.1:8080 (port 0 picks a free one).
        #[arg(long)]
        listen: Option<String>,
        /// UDP address of the media engine, e.g. 0.0.0.0:50000.
        #[arg(long)]
        media_bind: Option<String>,
        /// IP clients reach the media port at (NAT, or a 0.0.0.0 bind).
        #[arg(long)]
        public_ip: Option<String>,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an account. The password comes from --password, CONFAB_USER_PASSWORD, or stdin.
    Create {
        username: String,
        #[arg(long, env = "CONFAB_USER_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let (mut cfg, ignored) = Config::load(cli.config.as_deref(), std::env::vars())?;
    if let Some(url) = cli.database_url {
        cfg.database_url = url;
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| cfg.log.as_str().into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    for var in ignored {
        tracing::warn!("ignoring {var}: it names no confab setting");
    }
    match cli.command {
        Command::Serve { listen, media_bind, public_ip } => {
            cfg.listen = listen.unwrap_or(cfg.listen);
            cfg.media.bind = media_bind.unwrap_or(cfg.media.bind);
            cfg.media.public_ip = public_ip.or(cfg.media.public_ip);
            serve(cfg).await
        }
        Command::Migrate => {
            let store = open(&cfg).await?;
            tracing::info!(store = store.backend(), "migrations applied");
            Ok(())
        }
        Command::User { command: UserCommand::Create { username, password } } => {
            create_user(&cfg, username, password).await
        }
    }
}

async fn open(cfg: &Config) -> Result<Store> {
    Store::open(&cfg.database_url).await.with_context(|| format!("opening store {}", redact(&cfg.database_url)))
}

async fn serve(cfg: Config) -> Result<()> {
    let store = open(&cfg).await?;
    let listener =
        tokio::net::TcpListener::bind(&cfg.listen).await.with_context(|| format!("binding {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(store = store.backend(), database = %redact(&cfg.database_url), "store ready");
    tracing::info!("confab listening on http://{addr}");
    let app = App::new(store, cfg.chat.clone());
    let (sfu, events) =
        Sfu::start(sfu_config(&cfg.media)?).await.with_context(|| format!("binding media UDP {}", cfg.media.bind))?;
    tracing::info!(udp = %sfu.local_addr(), advertised = %sfu.advertised_addr(), "media engine ready (one UDP port for all peers)");
    let voice = Voice::new(app.clone(), sfu.clone(), events, cfg.voice.clone());
    let router = chat::server::router(&app).merge(signaling::router(&voice));
    chat::server::serve(listener, app, router, shutdown_signal()).await?;
    sfu.shutdown();
    tracing::info!("shut down cleanly");
    Ok(())
}

fn sfu_config(m: &config::MediaConfig) -> Result<SfuConfig> {
    let bind = m.bind.parse().with_context(|| format!("media.bind {:?} is not an ip:port", m.bind))?;
    let public_ip = match &m.public_ip {
        Some(ip) => Some(ip.parse().with_context(|| format!("media.public_ip {ip:?} is not an IP address"))?),
        None => None,
    };
    Ok(SfuConfig {
        bind,
        public_ip,
        last_n: m.last_n,
        peer_timeout: std::time::Duration::from_secs(m.peer_timeout_secs),
        ..SfuConfig::default()
    })
}

async fn create_user(cfg: &Config, username: String, password: Option<String>) -> Result<()> {
    let password = match password {
        Some(p) => p,
        None => {
            eprintln!("password for {username}:");
            std::io::stdin().lock().lines().next().context("no password on stdin")??
        }
    };
    if !(8..=128).contains(&password.chars().count()) {
        bail!("password must be 8-128 characters");
    }
    let store = open(cfg).await?;
    let hash = chat::auth::hash_password(&password).map_err(anyhow::Error::msg)?;
    let user = User { id: chat::id::IdGen::new(cfg.chat.node_id).next(), username, created_at: chat::id::now_ms() };
    store.users.create_user(&user, &hash).await?;
    println!("created user {} ({})", user.username, user.id);
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}

/// A database URL without its password, for logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => match url[s + 3..at].find(':') {
            Some(colon) => format!("{}:***{}", &url[..s + 3 + colon], &url[at..]),
            None => url.to_string(),
        },
        _ => url.to_string(),
    }
}
