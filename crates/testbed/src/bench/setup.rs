//! What every step of a run shares, created once on the first server (the database outlives each
//! step's server, so accounts and tokens stay valid): media accounts in one guild with a voice
//! channel per mode and room, and each chat sweep's guilds with their members.

use std::collections::HashMap;

use anyhow::{Context, Result};
use indicatif::ProgressBar;

use super::api::{Account, Api, run_tag};
use super::chat_run::ChatGuild;
use super::scenario::{Scenario, mode_name};

pub struct Shared {
    /// Media accounts, enough for the largest step; the first owns the media guild.
    pub media: Vec<Account>,
    /// mode → voice channel per room.
    channels: HashMap<&'static str, Vec<String>>,
    /// chat sweep name → its guilds.
    chat: HashMap<String, Vec<ChatGuild>>,
}

impl Shared {
    pub async fn create(base: &str, scenario: &Scenario, pb: &ProgressBar) -> Result<Shared> {
        let api = Api::new(base)?;
        let tag = run_tag();
        let chat_users: usize = scenario.chat.iter().map(|c| c.guilds * c.users_per_guild).sum();
        let media_users = scenario.media_accounts();
        let total = media_users + chat_users;
        let names: Vec<String> = (0..total).map(|i| format!("b{tag}-{i}")).collect();
        let done = std::sync::atomic::AtomicUsize::new(0);
        let accounts = api
            .signup_many(names, || {
                let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if n.is_multiple_of(10) || n == total {
                    pb.set_message(format!("signing up {n}/{total} accounts"));
                }
            })
            .await
            .context("signing up the benchmark's accounts")?;
        let (media, mut rest) = (accounts[..media_users].to_vec(), accounts[media_users..].to_vec());

        let mut channels: HashMap<&'static str, Vec<String>> = HashMap::new();
        if let Some(owner) = media.first() {
            pb.set_message("media guild and voice channels");
            let (guild, _) = api.guild("bench media", owner, &media).await?;
            let rooms = scenario.media.iter().map(|m| m.rooms).max().unwrap_or(0);
            let modes = scenario.media.iter().flat_map(|m| m.modes.iter().map(|m| mode_name(*m)));
            let mut modes: Vec<&'static str> = modes.collect();
            modes.sort_unstable();
            modes.dedup();
            for mode in modes {
                let mut list = Vec::with_capacity(rooms);
                for r in 0..rooms {
                    list.push(api.voice_channel(owner, &guild, &format!("{mode}-{r}"), mode).await?);
                }
                channels.insert(mode, list);
            }
        }

        let mut chat = HashMap::new();
        for sweep in &scenario.chat {
            pb.set_message(format!("chat guilds for {}", sweep.name));
            let mut guilds = Vec::with_capacity(sweep.guilds);
            for g in 0..sweep.guilds {
                let members: Vec<Account> = rest.drain(..sweep.users_per_guild).collect();
                let (_, text_channel) = api.guild(&format!("bench chat {g}"), &members[0], &members).await?;
                guilds.push(ChatGuild { text_channel, members });
            }
            chat.insert(sweep.name.clone(), guilds);
        }
        Ok(Shared { media, channels, chat })
    }

    pub fn channels(&self, mode: &str, rooms: usize) -> Result<&[String]> {
        let list = self.channels.get(mode).with_context(|| format!("no channels for {mode}"))?;
        list.get(..rooms).context("fewer channels than rooms")
    }

    pub fn chat_guilds(&self, sweep: &str) -> Result<&[ChatGuild]> {
        self.chat.get(sweep).map(Vec::as_slice).with_context(|| format!("no guilds for {sweep}"))
    }
}
