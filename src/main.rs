//! `confab`: the command line. Everything here is wiring; the work lives in the crates.

use anyhow::{Context, Result, bail};
use chat::store::User;
use clap::{Parser, Subcommand};
use confab::config::Config;
use confab::server::{Running, open_store};
use std::io::BufRead;
use std::path::PathBuf;

/// See Cargo.toml: allocation-heavy HTTP serving ran a third of its time in glibc's malloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        /// Run every voice room in this mode, whatever its channel says (benchmarks).
        #[arg(long, value_parser = ["hybrid", "sfu", "mcu"])]
        room_mode: Option<String>,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate the configuration (file, CONFAB_* variables, --database-url) and print the
    /// effective settings with secrets masked; exits 1 naming every problem found.
    Check,
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
    cap_malloc_arenas();
    let cli = Cli::parse();
    let (mut cfg, ignored) = Config::load(cli.config.as_deref(), std::env::vars())?;
    if let Some(url) = cli.database_url {
        cfg.database_url = url;
    }
    init_logging(&cfg);
    for var in ignored {
        tracing::warn!("ignoring {var}: it names no confab setting");
    }
    match cli.command {
        Command::Serve { listen, media_bind, public_ip, room_mode } => {
            cfg.listen = listen.unwrap_or(cfg.listen);
            cfg.media.bind = media_bind.unwrap_or(cfg.media.bind);
            cfg.media.public_ip = public_ip.or(cfg.media.public_ip);
            if let Some(mode) = room_mode {
                cfg.voice.mode = Some(serde_json::from_value(serde_json::Value::String(mode))?);
            }
            // What `config check` refuses, serve refuses, with the first problem named.
            if let Some(first) = cfg.problems().first() {
                bail!("invalid configuration: {first} (`confab config check` lists every problem)");
            }
            Running::start(&cfg).await?.serve_until(shutdown_signal()).await
        }
        Command::Migrate => {
            let store = open_store(&cfg).await?;
            tracing::info!(store = store.backend(), "migrations applied");
            Ok(())
        }
        Command::User { command: UserCommand::Create { username, password } } => {
            create_user(&cfg, username, password).await
        }
        Command::Config { command: ConfigCommand::Check } => {
            print!("{}", confab::config::masked(&cfg)?);
            let problems = cfg.problems();
            if problems.is_empty() {
                eprintln!("configuration ok");
                return Ok(());
            }
            for p in &problems {
                eprintln!("error: {p}");
            }
            std::process::exit(1);
        }
    }
}

/// Rust allocates through mimalloc; the C libraries (GStreamer, x264, libvpx, SQLite) through
/// glibc's malloc, which gives threads up to eight arenas per core and never hands their memory
/// back. Composite pipelines start and stop threads all day, and the soak run saw RSS climb for
/// ten minutes as those threads spread over fresh arenas; two arenas bound that.
fn cap_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter (under glibc's own lock); arenas made
    // before it stay, and none are yet: the runtime's threads allocate through mimalloc.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Logs to stderr: `RUST_LOG` if set, else the configured filter; JSON lines when asked for.
fn init_logging(cfg: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&cfg.log))
        .unwrap_or_else(|_| "info".into());
    let fmt = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match cfg.log_format {
        confab::config::LogFormat::Json => fmt.json().flatten_event(true).with_current_span(false).init(),
        confab::config::LogFormat::Text => fmt.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init(),
    }
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
    let store = open_store(cfg).await?;
    let hash = chat::auth::hash_password(&password).map_err(anyhow::Error::msg)?;
    let user = User::new(chat::id::IdGen::new(cfg.chat.node_id).next(), username, chat::id::now_ms());
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
