//! Layering (defaults, file, environment), embedded text, and refusals.

use super::*;

fn env(pairs: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>().into_iter()
}

#[test]
fn cluster_settings_from_env() {
    let (c, _) = Config::load(
        None,
        env(&[
            ("CONFAB_CLUSTER_NATS_URL", "nats://127.0.0.1:4222"),
            ("CONFAB_CLUSTER_ROLES", "api, gateway"),
            ("CONFAB_CLUSTER_NODE_ID", "edge-1"),
        ]),
    )
    .unwrap();
    assert!(c.cluster.enabled());
    assert_eq!(c.cluster.roles, vec![cluster::Role::Api, cluster::Role::Gateway]);
    assert!(c.cluster.serves(cluster::Role::Gateway) && !c.cluster.serves(cluster::Role::Media));
    assert_eq!(c.cluster.check(), Ok(()));
    let bad = Config::load(None, env(&[("CONFAB_CLUSTER_ROLES", "api,chat")]));
    assert!(format!("{:#}", bad.unwrap_err()).contains("unknown role \"chat\""));
    let (single, _) = Config::load(None, env(&[])).unwrap();
    assert!(!single.cluster.enabled() && single.cluster.serves(cluster::Role::Media), "one node serves all");
}

#[test]
fn defaults_file_then_env() {
    let (c, _) = Config::load(None, env(&[])).unwrap();
    assert_eq!(c.listen, "127.0.0.1:8080");
    assert_eq!(c.database_url, "sqlite:data/confab.db");

    let dir = std::env::temp_dir().join(format!("confab-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("confab.toml");
    std::fs::write(&file, "listen = \"0.0.0.0:9000\"\n[chat]\nheartbeat_interval_ms = 1000\nnode_id = 3\n").unwrap();
    let (c, ignored) = Config::load(
        Some(&file),
        env(&[
            ("CONFAB_CHAT_NODE_ID", "7"),
            ("CONFAB_DATABASE_URL", "postgres://x/y"),
            ("CONFAB_MEDIA_PUBLIC_IP", "203.0.113.7"),
            ("CONFAB_VOICE_MODE", "sfu"),
            ("CONFAB_VIDEO_WIDTH", "640"),
            ("HOME", "/root"),
            ("CONFAB_TEST_X", "1"),
        ]),
    )
    .unwrap();
    assert_eq!(ignored, vec!["CONFAB_TEST_X".to_string()]);
    assert_eq!(c.listen, "0.0.0.0:9000");
    assert_eq!(c.chat.heartbeat_interval_ms, 1000);
    assert_eq!(c.chat.node_id, 7, "env beats file");
    assert_eq!(c.database_url, "postgres://x/y");
    assert_eq!(c.media.public_ip.as_deref(), Some("203.0.113.7"), "settings without a default are known too");
    assert_eq!(c.voice.mode, Some(signaling::protocol::RoomMode::Sfu));
    assert_eq!(c.video.width, 640);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn embedded_json_or_toml_with_free_ports() {
    let j = Config::from_embedded_text(r#" {"database_url": "sqlite:x.db", "media": {"last_n": 3}}"#).unwrap();
    let t = Config::from_embedded_text("database_url = \"sqlite:x.db\"\n[media]\nlast_n = 3\n").unwrap();
    for c in [&j, &t] {
        assert_eq!((c.listen.as_str(), c.media.bind.as_str()), ("127.0.0.1:0", "127.0.0.1:0"));
        assert_eq!((c.database_url.as_str(), c.media.last_n), ("sqlite:x.db", 3));
    }
    let c = Config::from_embedded_text(r#"{"listen": "127.0.0.1:9", "media": {"bind": "0.0.0.0:7"}}"#).unwrap();
    assert_eq!((c.listen.as_str(), c.media.bind.as_str()), ("127.0.0.1:9", "0.0.0.0:7"));
    for bad in
        ["{", "[1]", r#"{"listn": 1}"#, r#"{"media": 3}"#, "listen = ", "nope = 1", r#"{"chat": {"node_id": "x"}}"#]
    {
        assert!(Config::from_embedded_text(bad).is_err(), "{bad}");
    }
}

#[test]
fn bad_values_and_unknown_file_keys_are_errors() {
    assert!(Config::load(None, env(&[("CONFAB_CHAT_NODE_ID", "many")])).is_err());
    let dir = std::env::temp_dir().join(format!("confab-cfg-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("confab.toml");
    std::fs::write(&file, "listn = \"x\"\n").unwrap();
    assert!(Config::load(Some(&file), env(&[])).is_err());
    std::fs::write(&file, "[chat]\nnope = 1\n").unwrap();
    assert!(Config::load(Some(&file), env(&[])).is_err());
    std::fs::remove_dir_all(dir).unwrap();
}
