//! `[cluster]`: where NATS is, who this node is, what it serves and what it tells clients.

use serde::{Deserialize, Serialize};

/// What a node serves. A node runs every role unless told otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The HTTP API (`/api`) and the web client.
    Api,
    /// The chat gateway (`/gateway`).
    Gateway,
    /// The voice gateway (`/voice`) and the media engine.
    Media,
    /// Live-stream ingest (RTMP, WHIP) and LL-HLS.
    Live,
}

pub const ALL_ROLES: [Role; 4] = [Role::Api, Role::Gateway, Role::Media, Role::Live];

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// `nats://host:port` of the NATS server (JetStream on). Empty: a single-process server.
    pub nats_url: String,
    /// This node's name among the others; empty: a random one at each start.
    pub node_id: String,
    /// A list, or in a `CONFAB_CLUSTER_ROLES` variable a comma-separated string.
    #[serde(deserialize_with = "roles")]
    pub roles: Vec<Role>,
    /// The URL clients reach this node's HTTP at (`http://10.0.0.5:8080`); empty: the bound one.
    pub advertise_http: String,
    /// Heartbeat period (ms); a node unheard for `dead_after_ms` is dead to the others.
    pub heartbeat_ms: u64,
    pub dead_after_ms: u64,
    /// Dispatches waiting for NATS while it is away, at most; beyond, they are dropped and every
    /// session in the cluster is made to start afresh once NATS is back (`Notice::Resync`).
    pub publish_queue: usize,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            nats_url: String::new(),
            node_id: String::new(),
            roles: ALL_ROLES.to_vec(),
            advertise_http: String::new(),
            heartbeat_ms: 1000,
            dead_after_ms: 5000,
            publish_queue: 65_536,
        }
    }
}

impl ClusterConfig {
    pub fn enabled(&self) -> bool {
        !self.nats_url.is_empty()
    }

    /// Whether this node serves `role` (every role on a single node).
    pub fn serves(&self, role: Role) -> bool {
        !self.enabled() || self.roles.contains(&role)
    }

    /// The node's name: the configured one, else a fresh random one.
    pub fn node_name(&self) -> String {
        if self.node_id.is_empty() { format!("node-{:08x}", rand::random::<u32>()) } else { self.node_id.clone() }
    }

    /// Names what is wrong with the settings, if anything.
    pub fn check(&self) -> Result<(), String> {
        if !self.enabled() {
            return Ok(());
        }
        if !self.nats_url.starts_with("nats://") {
            return Err(format!("cluster.nats_url {:?} is not a nats:// URL", self.nats_url));
        }
        if self.roles.is_empty() {
            return Err("cluster.roles is empty: a node must serve something".into());
        }
        if !self.node_id.is_empty() && !self.node_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!("cluster.node_id {:?}: only letters, digits, '-' and '_'", self.node_id));
        }
        if self.heartbeat_ms == 0 || self.dead_after_ms < 2 * self.heartbeat_ms {
            return Err("cluster.dead_after_ms must be at least twice heartbeat_ms".into());
        }
        Ok(())
    }
}

/// `["api", "gateway"]` or `"api,gateway"`.
fn roles<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Role>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Roles {
        List(Vec<Role>),
        Text(String),
    }
    match Roles::deserialize(d)? {
        Roles::List(v) => Ok(v),
        Roles::Text(s) => s
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(|r| {
                Role::deserialize(serde::de::value::StrDeserializer::<D::Error>::new(r))
                    .map_err(|_| serde::de::Error::custom(format!("unknown role {r:?} (api, gateway, media, live)")))
            })
            .collect(),
    }
}
