//! The store suite: every trait method, the same tests on SQLite and on Postgres.
//!
//! Postgres runs when `CONFAB_TEST_POSTGRES_URL` is set (see `common`); otherwise those variants
//! print a notice and pass, unless `CONFAB_REQUIRE_POSTGRES=1`.

mod common;

use chat::id::{EPOCH_MS, Id, IdGen};
use chat::perms::Permissions;
use chat::store::{AuditEntry, Ban, Role};
use chat::store::{
    Channel, ChannelKind, Guild, Invite, Member, Message, Page, ReadState, Report, ReportStatus, Session, Store,
    StoreError, User, VoiceMode,
};
use common::{Backend, TestDb};

/// A fixed "now" for everything that takes explicit times.
const T0: i64 = EPOCH_MS + 3_600_000;

both_backends!(
    users,
    sessions,
    guilds,
    guild_creation_is_atomic,
    invites,
    concurrent_redeems_respect_max_uses,
    members,
    channels,
    messages,
    group_commit,
    history_paging,
    read_states,
    reports,
    voice_modes,
    roles_and_moderation,
);

// --- fixtures -------------------------------------------------------------------------------------

async fn new_user(store: &Store, ids: &IdGen, name: &str) -> User {
    let u = User::new(ids.next(), name.to_string(), T0);
    store.users.create_user(&u, &format!("hash-of-{name}")).await.unwrap();
    u
}

fn channel(ids: &IdGen, guild: Id, name: &str, kind: ChannelKind, position: i64) -> Channel {
    let voice_mode = (kind == ChannelKind::Voice).then_some(VoiceMode::Hybrid);
    Channel {
        id: ids.next(),
        guild_id: Some(guild),
        name: name.to_string(),
        kind,
        position,
        created_at: T0,
        voice_mode,
        slow_mode_secs: 0,
        topic: String::new(),
    }
}

/// A guild created at `T0` with the given channels at positions 0, 1, …
async fn new_guild(
    store: &Store,
    ids: &IdGen,
    owner: &User,
    name: &str,
    channels: &[(&str, ChannelKind)],
) -> (Guild, Vec<Channel>) {
    let g = Guild { id: ids.next(), name: name.to_string(), owner_id: owner.id, created_at: T0 };
    let chans: Vec<Channel> =
        channels.iter().zip(0..).map(|(&(n, kind), pos)| channel(ids, g.id, n, kind, pos)).collect();
    store.guilds.create_guild(&g, &chans).await.unwrap();
    (g, chans)
}

fn invite(code: &str, guild: &Guild, expires_at: Option<i64>, max_uses: Option<i64>) -> Invite {
    Invite {
        code: code.to_string(),
        guild_id: guild.id,
        creator_id: guild.owner_id,
        created_at: T0,
        expires_at,
        max_uses,
        uses: 0,
    }
}

async fn post(store: &Store, ids: &IdGen, ch: &Channel, author: &User, content: &str, mentions: &[&User]) -> Message {
    let m = Message {
        id: ids.next(),
        channel_id: ch.id,
        author_id: author.id,
        content: content.to_string(),
        mentions: mentions.iter().map(|u| u.id).collect(),
        edited_at: None,
        attachments: Vec::new(),
        reply_to: None,
        reactions: Vec::new(),
    };
    store.messages.create_message(&m).await.unwrap();
    m
}

fn rs(channel: &Channel, last_read_id: Id, unread_count: i64, mention_count: i64) -> ReadState {
    ReadState { channel_id: channel.id, last_read_id, unread_count, mention_count }
}

fn ids_of(messages: &[Message]) -> Vec<Id> {
    messages.iter().map(|m| m.id).collect()
}

#[track_caller]
fn assert_not_found<T: std::fmt::Debug>(r: Result<T, StoreError>, what: &str) {
    match r {
        Err(StoreError::NotFound(w)) if w == what => {}
        other => panic!("expected NotFound({what:?}), got {other:?}"),
    }
}

// --- users and sessions ---------------------------------------------------------------------------

async fn users(store: Store) {
    let ids = IdGen::new(1);
    let alice = new_user(&store, &ids, "Alice").await;
    assert_eq!(store.users.user(alice.id).await.unwrap(), Some(alice.clone()));
    assert_eq!(store.users.user(Id(12345)).await.unwrap(), None);

    for name in ["Alice", "alice", "ALICE", "aLiCe"] {
        let (u, hash) = store.users.credentials(name).await.unwrap().unwrap_or_else(|| panic!("{name}"));
        assert_eq!(u, alice, "{name}");
        assert_eq!(hash, "hash-of-Alice");
    }
    for name in ["bob", "Alic", "alice ", "alic%", "alic_", ""] {
        assert!(store.users.credentials(name).await.unwrap().is_none(), "{name:?}");
    }

    for name in ["Alice", "alice", "ALICE"] {
        let dup = User::new(ids.next(), name.to_string(), T0);
        match store.users.create_user(&dup, "other-hash").await {
            Err(StoreError::Conflict("username")) => {}
            other => panic!("{name}: expected Conflict(\"username\"), got {other:?}"),
        }
        assert_eq!(store.users.user(dup.id).await.unwrap(), None);
    }
    // The original is untouched.
    assert_eq!(store.users.credentials("alice").await.unwrap(), Some((alice.clone(), "hash-of-Alice".into())));

    let bob = new_user(&store, &ids, "bob").await;
    assert_eq!(store.users.credentials("BOB").await.unwrap().map(|(u, _)| u), Some(bob.clone()));
    assert_eq!(store.users.user(bob.id).await.unwrap(), Some(bob));
}

async fn sessions(store: Store) {
    let ids = IdGen::new(1);
    let alice = new_user(&store, &ids, "alice").await;
    let bob = new_user(&store, &ids, "bob").await;
    let session = |hash: &str, user: &User, expires_at: i64| Session {
        token_hash: hash.to_string(),
        user_id: user.id,
        created_at: T0 - 10,
        expires_at,
    };
    let live = session("live", &alice, T0 + 1000);
    let later = session("later", &bob, T0 + 2000);
    let dead = session("dead", &alice, T0 - 1);
    for s in [&live, &later, &dead] {
        store.sessions.create_session(s).await.unwrap();
    }
    let get = |hash: &'static str, now: i64| {
        let store = store.clone();
        async move { store.sessions.session(hash, now).await.unwrap() }
    };

    assert_eq!(get("live", T0).await, Some(live.clone()));
    assert_eq!(get("live", T0 + 999).await, Some(live.clone()));
    assert_eq!(get("live", T0 + 1000).await, None, "expired at its expiry instant");
    assert_eq!(get("later", T0).await, Some(later.clone()));
    assert_eq!(get("dead", T0).await, None);
    assert_eq!(get("dead", T0 - 2).await, Some(dead.clone()), "stored, only expired");
    assert_eq!(get("nope", T0).await, None);

    assert!(store.sessions.delete_session("live").await.unwrap());
    assert!(!store.sessions.delete_session("live").await.unwrap());
    assert_eq!(get("live", T0).await, None);
    assert!(!store.sessions.delete_session("nope").await.unwrap());

    assert_eq!(store.sessions.purge_expired(T0).await.unwrap(), 1);
    assert_eq!(store.sessions.purge_expired(T0).await.unwrap(), 0);
    assert_eq!(get("dead", T0 - 2).await, None, "purged");
    assert_eq!(get("later", T0).await, Some(later));
    assert_eq!(store.sessions.purge_expired(T0 + 2000).await.unwrap(), 1);
    assert_eq!(get("later", T0).await, None);
}

// --- guilds, invites, members, channels -----------------------------------------------------------

async fn guilds(store: Store) {
    let ids = IdGen::new(1);
    let alice = new_user(&store, &ids, "alice").await;
    let bob = new_user(&store, &ids, "bob").await;
    let (g, chans) =
        new_guild(&store, &ids, &alice, "Alice's", &[("general", ChannelKind::Text), ("lounge", ChannelKind::Voice)])
            .await;

    assert_eq!(store.guilds.guild(g.id).await.unwrap(), Some(g.clone()));
    assert_eq!(store.guilds.guild(Id(1)).await.unwrap(), None);
    // The owner is a member from the start, joined when the guild was created.
    assert_eq!(
        store.members.members(g.id).await.unwrap(),
        vec![Member {
            guild_id: g.id,
            user_id: alice.id,
            username: "alice".into(),
            display_name: None,
            avatar: None,
            joined_at: g.created_at,
            roles: vec![],
            timeout_until: None
        }]
    );
    assert!(store.members.is_member(g.id, alice.id).await.unwrap());
    assert!(!store.members.is_member(g.id, bob.id).await.unwrap());
    assert_eq!(store.channels.channels(g.id).await.unwrap(), chans);
    assert_eq!(store.guilds.guilds_of(alice.id).await.unwrap(), vec![g.clone()]);
    assert_eq!(store.guilds.guilds_of(bob.id).await.unwrap(), vec![]);

    let (h, none) = new_guild(&store, &ids, &bob, "Bob's", &[]).await;
    assert!(none.is_empty());
    assert_eq!(store.channels.channels(h.id).await.unwrap(), vec![]);
    assert_eq!(store.guilds.guilds_of(bob.id).await.unwrap(), vec![h.clone()]);

    // Joining bob's guild: alice's guilds, ordered by id.
    store.guilds.create_invite(&invite("bobs", &h, None, None)).await.unwrap();
    store.members.join_by_invite("bobs", alice.id, T0).await.unwrap();
    assert_eq!(store.guilds.guilds_of(alice.id).await.unwrap(), vec![g.clone(), h.clone()]);
    assert_eq!(store.guilds.guilds_of(bob.id).await.unwrap(), vec![h]);
    assert_eq!(store.guilds.guilds_of(Id(1)).await.unwrap(), vec![]);

    // A second guild with the same id fails and leaves the first intact.
    let dup = Guild { id: g.id, name: "dup".into(), owner_id: bob.id, created_at: T0 };
    assert!(store.guilds.create_guild(&dup, &[]).await.is_err());
    assert_eq!(store.guilds.guild(g.id).await.unwrap(), Some(g));
}

async fn guild_creation_is_atomic(store: Store) {
    let ids = IdGen::new(1);
    let bob = new_user(&store, &ids, "bob").await;
    let (_, existing) = new_guild(&store, &ids, &bob, "first", &[("general", ChannelKind::Text)]).await;

    // The guild row, the owner's membership and the first channel go in before the second channel
    // collides with an existing id: all of it must be rolled back.
    let bad = Guild { id: ids.next(), name: "broken".into(), owner_id: bob.id, created_at: T0 };
    let fresh = channel(&ids, bad.id, "ok", ChannelKind::Text, 0);
    let colliding = Channel { id: existing[0].id, ..channel(&ids, bad.id, "dup", ChannelKind::Text, 1) };
    assert!(store.guilds.create_guild(&bad, &[fresh.clone(), colliding]).await.is_err());

    assert_eq!(store.guilds.guild(bad.id).await.unwrap(), None);
    assert!(!store.members.is_member(bad.id, bob.id).await.unwrap());
    assert_eq!(store.members.members(bad.id).await.unwrap(), vec![]);
    assert_eq!(store.channels.channel(fresh.id).await.unwrap(), None);
    assert_eq!(store.channels.channels(bad.id).await.unwrap(), vec![]);
    assert_eq!(store.guilds.guilds_of(bob.id).await.unwrap().len(), 1);
    assert_eq!(store.channels.channel(existing[0].id).await.unwrap(), Some(existing[0].clone()));

    // The same guild goes in fine once the channels are valid.
    store.guilds.create_guild(&bad, std::slice::from_ref(&fresh)).await.unwrap();
    assert_eq!(store.channels.channels(bad.id).await.unwrap(), vec![fresh]);
    assert!(store.members.is_member(bad.id, bob.id).await.unwrap());
}

async fn invites(store: Store) {
    let ids = IdGen::new(1);
    let owner = new_user(&store, &ids, "owner").await;
    let [bob, carol, dave, erin, frank] = {
        let mut v = Vec::new();
        for name in ["bob", "carol", "dave", "erin", "frank"] {
            v.push(new_user(&store, &ids, name).await);
        }
        v.try_into().unwrap()
    };
    let (g, _) = new_guild(&store, &ids, &owner, "g", &[("general", ChannelKind::Text)]).await;
    let join = |code: &'static str, user: &User, now: i64| {
        let (store, user) = (store.clone(), user.id);
        async move { store.members.join_by_invite(code, user, now).await }
    };
    let is_member = |user: &User| {
        let (store, user, guild) = (store.clone(), user.id, g.id);
        async move { store.members.is_member(guild, user).await.unwrap() }
    };

    store.guilds.create_invite(&invite("open", &g, None, None)).await.unwrap();
    store.guilds.create_invite(&invite("two", &g, None, Some(2))).await.unwrap();
    store.guilds.create_invite(&invite("old", &g, Some(T0 + 100), None)).await.unwrap();
    match store.guilds.create_invite(&invite("open", &g, None, Some(5))).await {
        Err(StoreError::Conflict("invite")) => {}
        other => panic!("duplicate code: expected Conflict(\"invite\"), got {other:?}"),
    }

    // Unlimited invite: joins once; redeeming again changes nothing.
    assert_eq!(join("open", &bob, T0 + 1).await.unwrap(), (g.clone(), true));
    assert!(is_member(&bob).await);
    assert_eq!(join("open", &bob, T0 + 2).await.unwrap(), (g.clone(), false));
    let bobs: Vec<Member> =
        store.members.members(g.id).await.unwrap().into_iter().filter(|m| m.user_id == bob.id).collect();
    assert_eq!(bobs.len(), 1);
    assert_eq!(bobs[0].joined_at, T0 + 1, "a second redeem does not re-join");

    // max_uses = 2: redeems by existing members (owner, bob, carol again) do not count a use, so
    // carol and dave both get in and only then is it used up.
    assert_eq!(join("two", &owner, T0 + 3).await.unwrap(), (g.clone(), false));
    assert_eq!(join("two", &bob, T0 + 3).await.unwrap(), (g.clone(), false));
    assert_eq!(join("two", &carol, T0 + 4).await.unwrap(), (g.clone(), true));
    assert_eq!(join("two", &carol, T0 + 4).await.unwrap(), (g.clone(), false));
    assert_eq!(join("two", &dave, T0 + 5).await.unwrap(), (g.clone(), true));
    assert_not_found(join("two", &erin, T0 + 6).await, "invite");
    assert!(!is_member(&erin).await);
    assert_not_found(join("two", &carol, T0 + 6).await, "invite");
    assert!(is_member(&carol).await);

    // Expiry: valid strictly before expires_at.
    assert_not_found(join("old", &erin, T0 + 100).await, "invite");
    assert_not_found(join("old", &erin, T0 + 10_000).await, "invite");
    assert!(!is_member(&erin).await);
    assert_eq!(join("old", &erin, T0 + 99).await.unwrap(), (g.clone(), true));

    // Unknown codes.
    assert_not_found(join("nope", &frank, T0).await, "invite");
    assert_not_found(join("", &frank, T0).await, "invite");
    assert_not_found(join("OPEN", &frank, T0).await, "invite");
    assert!(!is_member(&frank).await);

    let mut joined: Vec<Id> = store.members.members(g.id).await.unwrap().iter().map(|m| m.user_id).collect();
    joined.sort();
    assert_eq!(joined, vec![owner.id, bob.id, carol.id, dave.id, erin.id]);
}

/// Many users redeeming a limited invite at once: exactly `max_uses` get in, the rest are told the
/// invite is used up (no database errors), and one user redeeming twice at once joins once.
async fn concurrent_redeems_respect_max_uses(store: Store) {
    let ids = IdGen::new(1);
    let owner = new_user(&store, &ids, "owner").await;
    let (g, _) = new_guild(&store, &ids, &owner, "g", &[]).await;
    store.guilds.create_invite(&invite("few", &g, None, Some(3))).await.unwrap();
    store.guilds.create_invite(&invite("many", &g, None, None)).await.unwrap();
    let mut users = Vec::new();
    for i in 0..12 {
        users.push(new_user(&store, &ids, &format!("user{i}")).await);
    }

    let results = futures_util::future::join_all(users.iter().map(|u| {
        let store = store.clone();
        let user = u.id;
        tokio::spawn(async move { store.members.join_by_invite("few", user, T0).await })
    }))
    .await;
    let mut joined = 0;
    for r in results {
        match r.unwrap() {
            Ok((guild, true)) => {
                assert_eq!(guild, g);
                joined += 1;
            }
            other => assert_not_found(other, "invite"),
        }
    }
    assert_eq!(joined, 3);
    assert_eq!(store.members.members(g.id).await.unwrap().len(), 4);
    assert_eq!(store.members.member_count(g.id).await.unwrap(), 4);
    // Pages by user id: two, then the other two, then none.
    let first = store.members.members_page(g.id, None, 2).await.unwrap();
    let rest = store.members.members_page(g.id, first.last().map(|m| m.user_id), 10).await.unwrap();
    assert_eq!((first.len(), rest.len()), (2, 2));
    let mut paged: Vec<Id> = first.iter().chain(&rest).map(|m| m.user_id).collect();
    assert!(paged.windows(2).all(|w| w[0] < w[1]), "ordered by user id");
    paged.dedup();
    assert_eq!(paged.len(), 4);
    assert!(store.members.members_page(g.id, rest.last().map(|m| m.user_id), 10).await.unwrap().is_empty());

    let late = new_user(&store, &ids, "late").await;
    let twice = futures_util::future::join_all((0..4).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.members.join_by_invite("many", late.id, T0).await })
    }))
    .await;
    let added: Vec<bool> = twice.into_iter().map(|r| r.unwrap().unwrap().1).collect();
    assert_eq!(added.iter().filter(|&&a| a).count(), 1, "{added:?}");
    assert_eq!(store.members.members(g.id).await.unwrap().len(), 5);
}

async fn members(store: Store) {
    let ids = IdGen::new(1);
    // Named so that alphabetical order differs from join order.
    let zed = new_user(&store, &ids, "zed").await;
    let amy = new_user(&store, &ids, "Amy").await;
    let bob = new_user(&store, &ids, "bob").await;
    let cat = new_user(&store, &ids, "cat").await;
    let (g, _) = new_guild(&store, &ids, &zed, "g", &[]).await;
    store.guilds.create_invite(&invite("in", &g, None, None)).await.unwrap();
    for (who, at) in [(&bob, T0 + 20), (&cat, T0 + 10), (&amy, T0 + 10)] {
        assert!(store.members.join_by_invite("in", who.id, at).await.unwrap().1);
    }
    let member = |u: &User, joined_at: i64| Member {
        guild_id: g.id,
        user_id: u.id,
        username: u.username.clone(),
        display_name: None,
        avatar: None,
        joined_at,
        roles: vec![],
        timeout_until: None,
    };
    // By join time, then (same time) by user id: amy was created before cat.
    assert_eq!(
        store.members.members(g.id).await.unwrap(),
        vec![member(&zed, T0), member(&amy, T0 + 10), member(&cat, T0 + 10), member(&bob, T0 + 20)]
    );
    for u in [&zed, &amy, &bob, &cat] {
        assert!(store.members.is_member(g.id, u.id).await.unwrap());
    }

    // Another guild's members stay separate.
    let (h, _) = new_guild(&store, &ids, &amy, "h", &[]).await;
    assert_eq!(store.members.members(h.id).await.unwrap(), vec![Member { guild_id: h.id, ..member(&amy, T0) }]);
    assert!(!store.members.is_member(h.id, zed.id).await.unwrap());
    assert_eq!(store.members.members(Id(1)).await.unwrap(), vec![]);
    assert!(!store.members.is_member(Id(1), zed.id).await.unwrap());
}

async fn channels(store: Store) {
    let ids = IdGen::new(1);
    let owner = new_user(&store, &ids, "owner").await;
    let (g, _) = new_guild(&store, &ids, &owner, "g", &[]).await;
    let (h, elsewhere) = new_guild(&store, &ids, &owner, "h", &[("elsewhere", ChannelKind::Text)]).await;

    let c = channel(&ids, g.id, "c", ChannelKind::Text, 2);
    let a = channel(&ids, g.id, "a", ChannelKind::Voice, 0);
    let b = channel(&ids, g.id, "b", ChannelKind::Text, 1);
    let b2 = channel(&ids, g.id, "b2", ChannelKind::Text, 1);
    for ch in [&c, &b2, &a, &b] {
        store.channels.create_channel(ch).await.unwrap();
    }
    // By position, then (same position) by id.
    assert_eq!(store.channels.channels(g.id).await.unwrap(), vec![a.clone(), b.clone(), b2, c]);
    assert_eq!(store.channels.channel(a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(store.channels.channel(b.id).await.unwrap(), Some(b));
    assert_eq!(store.channels.channel(Id(7)).await.unwrap(), None);
    assert_eq!(store.channels.channels(h.id).await.unwrap(), elsewhere);
    assert_eq!(store.channels.channels(Id(7)).await.unwrap(), vec![]);

    let dup = Channel { name: "dup".into(), ..a.clone() };
    assert!(store.channels.create_channel(&dup).await.is_err());
    assert_eq!(store.channels.channel(a.id).await.unwrap(), Some(a));
}

// --- messages ------------------------------------------------------------------------------------

async fn messages(store: Store) {
    let ids = IdGen::new(1);
    let alice = new_user(&store, &ids, "alice").await;
    let bob = new_user(&store, &ids, "bob").await;
    let carol = new_user(&store, &ids, "carol").await;
    let (g, chans) = new_guild(&store, &ids, &alice, "g", &[("general", ChannelKind::Text)]).await;
    let ch = &chans[0];
    let state = |user: &User| {
        let (store, user, guild) = (store.clone(), user.id, g.id);
        async move { store.read_states.read_states(user, guild).await.unwrap().remove(0) }
    };

    let m = post(&store, &ids, ch, &alice, "hi <@bob> <@carol>", &[&bob, &carol]).await;
    assert_eq!(store.messages.message(m.id).await.unwrap(), Some(m.clone()));
    assert_eq!(m.mentions, vec![bob.id, carol.id]);
    let plain = post(&store, &ids, ch, &bob, "no mentions", &[]).await;
    assert_eq!(store.messages.message(plain.id).await.unwrap(), Some(plain.clone()));
    assert_eq!(store.messages.message(Id(99)).await.unwrap(), None);
    assert_eq!(state(&bob).await.mention_count, 1);
    assert_eq!(state(&carol).await.mention_count, 1);

    // Editing replaces content, mentions (also those counted for read states) and edited_at.
    let edited = Message {
        content: "hi <@carol> — ünïcödé ✓".into(),
        mentions: vec![carol.id],
        edited_at: Some(T0 + 5),
        attachments: Vec::new(),
        reply_to: None,
        reactions: Vec::new(),
        ..m.clone()
    };
    assert!(store.messages.edit_message(&edited).await.unwrap());
    assert_eq!(store.messages.message(m.id).await.unwrap(), Some(edited.clone()));
    assert_eq!(state(&bob).await.mention_count, 0);
    assert_eq!(state(&carol).await.mention_count, 1);
    let none = Message { mentions: vec![], edited_at: Some(T0 + 6), ..edited.clone() };
    assert!(store.messages.edit_message(&none).await.unwrap());
    assert_eq!(store.messages.message(m.id).await.unwrap(), Some(none.clone()));
    assert_eq!(state(&carol).await.mention_count, 0);
    let back = Message { mentions: vec![bob.id, carol.id], edited_at: Some(T0 + 7), ..none };
    assert!(store.messages.edit_message(&back).await.unwrap());
    assert_eq!(store.messages.message(m.id).await.unwrap(), Some(back.clone()));
    assert_eq!(state(&bob).await.mention_count, 1);

    // Editing a message that does not exist creates nothing.
    let ghost = Message { id: ids.next(), ..back.clone() };
    assert!(!store.messages.edit_message(&ghost).await.unwrap());
    assert_eq!(store.messages.message(ghost.id).await.unwrap(), None);

    assert!(store.messages.delete_message(m.id).await.unwrap());
    assert!(!store.messages.delete_message(m.id).await.unwrap());
    assert!(!store.messages.delete_message(Id(99)).await.unwrap());
    assert_eq!(store.messages.message(m.id).await.unwrap(), None);
    assert_eq!(state(&bob).await.mention_count, 0, "mentions go with the message");
    assert_eq!(state(&carol).await, rs(ch, Id(0), 1, 0));
    assert_eq!(store.messages.history(ch.id, Page::Latest { limit: 10 }).await.unwrap(), vec![plain]);
}

/// Many posts at once share commits; each caller hears its own outcome: a duplicate id fails
/// alone, the others are stored, with their mentions.
async fn group_commit(store: Store) {
    let ids = IdGen::new(1);
    let alice = new_user(&store, &ids, "alice").await;
    let bob = new_user(&store, &ids, "bob").await;
    let (_, chans) = new_guild(&store, &ids, &alice, "g", &[("general", ChannelKind::Text)]).await;
    let ch = chans[0].clone();
    let first = post(&store, &ids, &ch, &alice, "first", &[]).await;
    let mut batch: Vec<Message> = (0..200)
        .map(|i| Message {
            id: ids.next(),
            channel_id: ch.id,
            author_id: alice.id,
            content: format!("m{i}"),
            mentions: if i % 10 == 0 { vec![bob.id] } else { vec![] },
            edited_at: None,
            attachments: Vec::new(),
            reply_to: None,
            reactions: Vec::new(),
        })
        .collect();
    batch.insert(100, Message { content: "duplicate".into(), ..first.clone() });
    let results = futures_util::future::join_all(batch.iter().map(|m| {
        let (store, m) = (store.clone(), m.clone());
        tokio::spawn(async move { store.messages.create_message(&m).await })
    }))
    .await;
    for (m, r) in batch.iter().zip(results) {
        let r = r.unwrap();
        if m.content == "duplicate" {
            assert!(r.is_err(), "the duplicate id fails");
        } else {
            r.unwrap();
            assert_eq!(store.messages.message(m.id).await.unwrap().as_ref(), Some(m));
        }
    }
    assert_eq!(store.messages.message(first.id).await.unwrap().unwrap().content, "first", "not overwritten");
    let page = store.messages.history(ch.id, Page::Latest { limit: 100 }).await.unwrap();
    assert_eq!(page.len(), 100);
    let bob_reads = store.read_states.read_states(bob.id, chans[0].guild_id.unwrap()).await.unwrap();
    assert_eq!(bob_reads[0].mention_count, 20);
}

async fn history_paging(store: Store) {
    let ids = IdGen::new(1);
    let alice = new_user(&store, &ids, "alice").await;
    let bob = new_user(&store, &ids, "bob").await;
    let (_, chans) = new_guild(&store, &ids, &alice, "g", &[("a", ChannelKind::Text), ("b", ChannelKind::Text)]).await;
    let (a, b) = (&chans[0], &chans[1]);

    let mut in_a = Vec::new();
    for i in 0..250 {
        let author = if i % 2 == 0 { &alice } else { &bob };
        in_a.push(post(&store, &ids, a, author, &format!("a{i}"), &[]).await.id);
        if i % 5 == 0 {
            post(&store, &ids, b, &alice, &format!("b{i}"), &[]).await;
        }
    }
    let newest_first: Vec<Id> = in_a.iter().rev().copied().collect();
    let history = |page: Page| {
        let store = store.clone();
        let channel = a.id;
        async move {
            let got = store.messages.history(channel, page).await.unwrap();
            assert!(got.iter().all(|m| m.channel_id == channel), "{page:?}: another channel's message");
            assert!(got.windows(2).all(|w| w[0].id > w[1].id), "{page:?}: not newest first");
            got
        }
    };

    // Backwards: Latest, then Before the oldest seen.
    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut page = history(Page::Latest { limit: 100 }).await;
    assert_eq!(page[0].content, "a249");
    loop {
        sizes.push(page.len());
        let Some(oldest) = page.last().map(|m| m.id) else {
            break;
        };
        seen.extend(ids_of(&page));
        page = history(Page::Before { id: oldest, limit: 100 }).await;
    }
    assert_eq!(sizes, [100, 100, 50, 0]);
    assert_eq!(seen, newest_first, "all 250 exactly once, newest first");

    // Forwards: After the newest seen, starting from 0; each page is still newest first.
    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut cursor = Id(0);
    loop {
        let page = history(Page::After { id: cursor, limit: 100 }).await;
        sizes.push(page.len());
        let Some(newest) = page.first().map(|m| m.id) else {
            break;
        };
        assert!(page.iter().all(|m| m.id > cursor));
        seen.extend(ids_of(&page));
        cursor = newest;
    }
    assert_eq!(sizes, [100, 100, 50, 0]);
    let mut oldest_first = seen.clone();
    oldest_first.sort();
    oldest_first.dedup();
    assert_eq!(oldest_first, in_a, "all 250 exactly once");
    assert_eq!(seen[..100], in_a[..100].iter().rev().copied().collect::<Vec<_>>()[..]);

    // Cursors in the middle and at the ends.
    let rev = |s: &[Id]| s.iter().rev().copied().collect::<Vec<_>>();
    assert_eq!(ids_of(&history(Page::Before { id: in_a[100], limit: 10 }).await), rev(&in_a[90..100]));
    assert_eq!(ids_of(&history(Page::After { id: in_a[100], limit: 10 }).await), rev(&in_a[101..111]));
    assert_eq!(ids_of(&history(Page::Latest { limit: 3 }).await), rev(&in_a[247..]));
    assert_eq!(ids_of(&history(Page::Before { id: in_a[2], limit: 100 }).await), rev(&in_a[..2]));
    assert_eq!(history(Page::Before { id: in_a[0], limit: 100 }).await, vec![]);
    assert_eq!(history(Page::After { id: in_a[249], limit: 100 }).await, vec![]);
    assert_eq!(history(Page::Latest { limit: 0 }).await, vec![]);

    let in_b = store.messages.history(b.id, Page::Latest { limit: 1000 }).await.unwrap();
    assert_eq!(in_b.len(), 50);
    assert!(in_b.iter().all(|m| m.channel_id == b.id && m.content.starts_with('b')));
    assert_eq!(store.messages.history(Id(5), Page::Latest { limit: 100 }).await.unwrap(), vec![]);
}

// --- read states ---------------------------------------------------------------------------------

async fn read_states(store: Store) {
    let ids = IdGen::new(1);
    let alice = new_user(&store, &ids, "alice").await;
    let bob = new_user(&store, &ids, "bob").await;
    let carol = new_user(&store, &ids, "carol").await;
    let (g, chans) = new_guild(
        &store,
        &ids,
        &alice,
        "g",
        &[("c1", ChannelKind::Text), ("voice", ChannelKind::Voice), ("c2", ChannelKind::Text)],
    )
    .await;
    let (c1, voice, c2) = (&chans[0], &chans[1], &chans[2]);
    // Another guild's channel never shows up in g's read states.
    let (_, other) = new_guild(&store, &ids, &bob, "h", &[("elsewhere", ChannelKind::Text)]).await;
    post(&store, &ids, &other[0], &bob, "<@alice> elsewhere", &[&alice]).await;
    let states = |user: &User| {
        let (store, user, guild) = (store.clone(), user.id, g.id);
        async move { store.read_states.read_states(user, guild).await.unwrap() }
    };
    let ack = |user: &User, ch: &Channel, m: Id| {
        let (store, user, ch) = (store.clone(), user.id, ch.id);
        async move { store.read_states.ack(user, ch, m).await.unwrap() }
    };

    // Nothing read yet, nothing to read; voice channels are not listed.
    assert_eq!(states(&alice).await, vec![rs(c1, Id(0), 0, 0), rs(c2, Id(0), 0, 0)]);

    let m1 = post(&store, &ids, c1, &bob, "hi", &[]).await;
    let m2 = post(&store, &ids, c1, &alice, "hey <@bob>", &[&bob]).await;
    let m3 = post(&store, &ids, c1, &bob, "<@alice> look", &[&alice]).await;
    let _m4 = post(&store, &ids, c1, &alice, "ok", &[]).await;
    let m5 = post(&store, &ids, c1, &carol, "<@alice> <@bob>", &[&alice, &bob]).await;
    post(&store, &ids, voice, &bob, "<@alice> voice chatter", &[&alice]).await;
    let _m6 = post(&store, &ids, c2, &carol, "other", &[]).await;
    // A self-mention is neither unread nor a mention for its author.
    let _m7 = post(&store, &ids, c2, &alice, "note to <@alice>", &[&alice]).await;

    // unread = others' messages (alice: m1, m3, m5 | m6); mentions of alice among them (m3, m5).
    assert_eq!(states(&alice).await, vec![rs(c1, Id(0), 3, 2), rs(c2, Id(0), 1, 0)]);
    // bob: m2, m4, m5 (mentions m2, m5) | m6, m7.
    assert_eq!(states(&bob).await, vec![rs(c1, Id(0), 3, 2), rs(c2, Id(0), 2, 0)]);

    ack(&alice, c1, m3.id).await;
    assert_eq!(states(&alice).await[0], rs(c1, m3.id, 1, 1));
    // Never backwards.
    ack(&alice, c1, m1.id).await;
    assert_eq!(states(&alice).await[0], rs(c1, m3.id, 1, 1));
    ack(&alice, c1, m5.id).await;
    assert_eq!(states(&alice).await, vec![rs(c1, m5.id, 0, 0), rs(c2, Id(0), 1, 0)]);
    ack(&alice, c1, m2.id).await;
    ack(&alice, c1, Id(0)).await;
    assert_eq!(states(&alice).await[0], rs(c1, m5.id, 0, 0));
    // Per user: bob's markers did not move.
    assert_eq!(states(&bob).await, vec![rs(c1, Id(0), 3, 2), rs(c2, Id(0), 2, 0)]);

    let m8 = post(&store, &ids, c1, &bob, "<@alice> again", &[&alice]).await;
    assert_eq!(states(&alice).await[0], rs(c1, m5.id, 1, 1));
    ack(&alice, c1, m8.id).await;
    assert_eq!(states(&alice).await[0], rs(c1, m8.id, 0, 0));

    // Acking a voice channel is harmless and it stays unlisted.
    ack(&alice, voice, m8.id).await;
    assert_eq!(states(&alice).await.len(), 2);
    assert_eq!(store.read_states.read_states(alice.id, Id(1)).await.unwrap(), vec![]);
}

// --- reports -------------------------------------------------------------------------------------

async fn reports(store: Store) {
    let ids = IdGen::new(1);
    let alice = new_user(&store, &ids, "alice").await;
    let bob = new_user(&store, &ids, "bob").await;
    let (g, chans) = new_guild(&store, &ids, &alice, "g", &[("general", ChannelKind::Text)]).await;
    let (h, other) = new_guild(&store, &ids, &bob, "h", &[("general", ChannelKind::Text)]).await;
    let ch = &chans[0];
    let m = post(&store, &ids, ch, &bob, "rude", &[]).await;
    let report = |guild: &Guild, ch: &Channel, reporter: &User, reason: &str, at: i64| Report {
        subject: chat::store::ReportSubject::Message,
        id: ids.next(),
        guild_id: guild.id,
        channel_id: ch.id,
        message_id: m.id,
        message_author: m.author_id,
        message_content: m.content.clone(),
        reporter_id: reporter.id,
        reason: reason.to_string(),
        status: ReportStatus::Open,
        created_at: at,
        resolved_by: None,
        resolved_at: None,
    };
    let r1 = report(&g, ch, &alice, "spam", T0 + 1);
    let r2 = report(&g, ch, &alice, "rude", T0 + 2);
    let r3 = report(&g, ch, &bob, "oops", T0 + 3);
    let elsewhere = report(&h, &other[0], &bob, "elsewhere", T0 + 4);
    for r in [&r1, &r2, &r3, &elsewhere] {
        store.reports.create_report(r).await.unwrap();
    }
    let list = |status: Option<ReportStatus>| {
        let (store, guild) = (store.clone(), g.id);
        async move { store.reports.reports(guild, status).await.unwrap() }
    };

    assert_eq!(store.reports.report(r1.id).await.unwrap(), Some(r1.clone()));
    assert_eq!(store.reports.report(Id(5)).await.unwrap(), None);
    assert_eq!(list(None).await, vec![r3.clone(), r2.clone(), r1.clone()]);
    assert_eq!(list(Some(ReportStatus::Open)).await, vec![r3.clone(), r2.clone(), r1.clone()]);
    assert_eq!(list(Some(ReportStatus::Deleted)).await, vec![]);

    // Resolved once; a second resolution changes nothing.
    assert!(store.reports.resolve_report(r2.id, ReportStatus::Deleted, alice.id, T0 + 10).await.unwrap());
    assert!(!store.reports.resolve_report(r2.id, ReportStatus::Dismissed, bob.id, T0 + 20).await.unwrap());
    let r2_done =
        Report { status: ReportStatus::Deleted, resolved_by: Some(alice.id), resolved_at: Some(T0 + 10), ..r2.clone() };
    assert_eq!(store.reports.report(r2.id).await.unwrap(), Some(r2_done.clone()));
    assert!(store.reports.resolve_report(r1.id, ReportStatus::Dismissed, alice.id, T0 + 11).await.unwrap());
    let r1_done = Report {
        status: ReportStatus::Dismissed,
        resolved_by: Some(alice.id),
        resolved_at: Some(T0 + 11),
        ..r1.clone()
    };
    assert!(!store.reports.resolve_report(Id(5), ReportStatus::Dismissed, alice.id, T0).await.unwrap());

    assert_eq!(list(Some(ReportStatus::Open)).await, vec![r3.clone()]);
    assert_eq!(list(Some(ReportStatus::Deleted)).await, vec![r2_done.clone()]);
    assert_eq!(list(Some(ReportStatus::Dismissed)).await, vec![r1_done.clone()]);
    assert_eq!(list(None).await, vec![r3.clone(), r2_done, r1_done]);
    assert_eq!(store.reports.reports(h.id, None).await.unwrap(), vec![elsewhere]);
    assert_eq!(store.reports.reports(Id(5), None).await.unwrap(), vec![]);

    // The report keeps its copy of the message once the message is gone.
    assert!(store.messages.delete_message(m.id).await.unwrap());
    assert_eq!(store.reports.report(r3.id).await.unwrap(), Some(r3));
}

// --- opening --------------------------------------------------------------------------------------

/// Opening an existing database again applies no migration twice and keeps the data.
async fn reopen_keeps_data(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let ids = IdGen::new(1);
    let store = db.open().await;
    let alice = new_user(&store, &ids, "alice").await;
    let (g, chans) = new_guild(&store, &ids, &alice, "g", &[("general", ChannelKind::Text)]).await;
    let m = post(&store, &ids, &chans[0], &alice, "still here", &[]).await;
    drop(store);

    for round in 0..2 {
        let store = db.open().await;
        assert_eq!(store.users.user(alice.id).await.unwrap(), Some(alice.clone()), "round {round}");
        assert_eq!(store.guilds.guild(g.id).await.unwrap(), Some(g.clone()));
        assert_eq!(store.channels.channels(g.id).await.unwrap(), chans);
        assert_eq!(store.messages.message(m.id).await.unwrap(), Some(m.clone()));
        // Still writable, and the unique index is still there.
        new_user(&store, &ids, &format!("user{round}")).await;
        let dup = User::new(ids.next(), "ALICE".into(), T0);
        assert!(matches!(store.users.create_user(&dup, "h").await, Err(StoreError::Conflict("username"))));
    }
    // Two stores on the same database at once.
    let (s1, s2) = (db.open().await, db.open().await);
    let bob = new_user(&s1, &ids, "bob").await;
    assert_eq!(s2.users.user(bob.id).await.unwrap(), Some(bob));
}

#[tokio::test]
async fn reopen_keeps_data_sqlite() {
    reopen_keeps_data(Backend::Sqlite).await;
}

#[tokio::test]
async fn reopen_keeps_data_postgres() {
    reopen_keeps_data(Backend::Postgres).await;
}

/// The live migration rebuilds SQLite's channels table: what was written before it survives,
/// messages, mentions and read states included (nothing cascades), and live channels work after.
async fn the_live_migration_keeps_data(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let ids = IdGen::new(1);
    let old_sql = std::sync::Arc::new(chat::store::sql::SqlStore::open_until(&db.url, 3).await.unwrap());
    let old = Store::from_sql(old_sql.clone());
    let alice = new_user(&old, &ids, "alice").await;
    let bob = new_user(&old, &ids, "bob").await;
    // Written as version 3 wrote guilds, channels and messages (today's store writes columns that
    // came later).
    let g = Guild { id: ids.next(), name: "g".into(), owner_id: alice.id, created_at: T0 };
    let chans: Vec<Channel> = [("general", ChannelKind::Text), ("talk", ChannelKind::Voice)]
        .iter()
        .zip(0..)
        .map(|(&(n, kind), pos)| channel(&ids, g.id, n, kind, pos))
        .collect();
    let pool = old_sql.pool();
    sqlx::query("INSERT INTO guilds (id, name, owner_id, created_at) VALUES ($1, $2, $3, $4)")
        .bind(g.id.0)
        .bind(&g.name)
        .bind(alice.id.0)
        .bind(T0)
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO members (guild_id, user_id, joined_at) VALUES ($1, $2, $3)")
        .bind(g.id.0)
        .bind(alice.id.0)
        .bind(T0)
        .execute(pool)
        .await
        .unwrap();
    for c in &chans {
        sqlx::query(
            "INSERT INTO channels (id, guild_id, name, kind, position, created_at, voice_mode, slow_mode_secs) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 0)",
        )
        .bind(c.id.0)
        .bind(g.id.0)
        .bind(&c.name)
        .bind(c.kind.as_str())
        .bind(c.position)
        .bind(c.created_at)
        .bind(c.voice_mode.unwrap_or_default().as_str())
        .execute(pool)
        .await
        .unwrap();
    }
    let m = Message {
        id: ids.next(),
        channel_id: chans[0].id,
        author_id: alice.id,
        content: "before the migration <@bob>".into(),
        mentions: vec![bob.id],
        edited_at: None,
        attachments: Vec::new(),
        reply_to: None,
        reactions: Vec::new(),
    };
    sqlx::query("INSERT INTO messages (id, channel_id, author_id, content, mention_ids, edited_at) VALUES ($1, $2, $3, $4, $5, NULL)")
        .bind(m.id.0)
        .bind(m.channel_id.0)
        .bind(m.author_id.0)
        .bind(&m.content)
        .bind(bob.id.to_string())
        .execute(old_sql.pool())
        .await
        .unwrap();
    sqlx::query("INSERT INTO mentions (message_id, user_id, channel_id) VALUES ($1, $2, $3)")
        .bind(m.id.0)
        .bind(bob.id.0)
        .bind(m.channel_id.0)
        .execute(old_sql.pool())
        .await
        .unwrap();
    drop(old);
    drop(old_sql);

    let store = db.open().await;
    assert_eq!(store.channels.channels(g.id).await.unwrap(), chans);
    assert_eq!(store.messages.message(m.id).await.unwrap(), Some(m.clone()));
    assert_eq!(store.read_states.read_states(bob.id, g.id).await.unwrap()[0].mention_count, 1);
    let live = channel(&ids, g.id, "stage", ChannelKind::Live, 2);
    store.channels.create_channel(&live).await.unwrap();
    assert_eq!(store.channels.channel(live.id).await.unwrap(), Some(live.clone()));
    store.stream_keys.set_stream_key(live.id, "hash-1", T0).await.unwrap();
    store.stream_keys.set_stream_key(live.id, "hash-2", T0).await.unwrap();
    assert_eq!(store.stream_keys.channel_for_stream_key("hash-1").await.unwrap(), None, "rotated away");
    assert_eq!(store.stream_keys.channel_for_stream_key("hash-2").await.unwrap(), Some(live.id));
    // Guilds from before roles got their @everyone, with the default permissions.
    let roles = store.roles.roles(g.id).await.unwrap();
    assert_eq!((roles.len(), roles[0].id, roles[0].name.as_str()), (1, g.id, "@everyone"));
    assert_eq!(roles[0].permissions, Permissions::EVERYONE_DEFAULT);
    let a = store.roles.access(g.id, alice.id).await.unwrap().unwrap();
    assert!(a.owner && a.timeout_until.is_none());
    // Users from before profiles have none, and can set one.
    let u = store.users.user(bob.id).await.unwrap().unwrap();
    assert_eq!((u.display_name, u.avatar), (None, None));
    assert!(store.users.set_profile(bob.id, Some("Bobby"), Some("00ff00ff00ff00ff")).await.unwrap());
    let u = store.users.user(bob.id).await.unwrap().unwrap();
    assert_eq!((u.display_name.as_deref(), u.avatar.as_deref()), (Some("Bobby"), Some("00ff00ff00ff00ff")));
    // Foreign keys are back on: a message in a channel that does not exist is refused.
    let orphan = Message { id: ids.next(), channel_id: Id(12345), ..m.clone() };
    assert!(store.messages.create_message(&orphan).await.is_err());
}

#[tokio::test]
async fn the_live_migration_keeps_data_sqlite() {
    the_live_migration_keeps_data(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_live_migration_keeps_data_postgres() {
    the_live_migration_keeps_data(Backend::Postgres).await;
}

#[tokio::test]
async fn bad_url_is_rejected() {
    for url in ["mysql://x", "", "sqlite", "postgres:/x", "http://localhost/db"] {
        match Store::open(url).await {
            Err(StoreError::BadUrl(u)) => assert_eq!(u, url),
            other => panic!("{url:?}: expected BadUrl, got {other:?}"),
        }
    }
}

#[test]
fn postgres_url_points_at_the_test_database() {
    use common::with_database;
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:54330/postgres", "t"),
        "postgres://postgres@127.0.0.1:54330/t"
    );
    assert_eq!(
        with_database("postgresql://u:p@h/postgres?sslmode=disable", "t"),
        "postgresql://u:p@h/t?sslmode=disable"
    );
    assert_eq!(with_database("postgres://u@h:1", "t"), "postgres://u@h:1/t");
}

async fn voice_modes(store: Store) {
    let ids = IdGen::new(1);
    let owner = new_user(&store, &ids, "owner").await;
    let g = Guild { id: ids.next(), name: "g".into(), owner_id: owner.id, created_at: T0 };
    let text = channel(&ids, g.id, "t", ChannelKind::Text, 0);
    let voice = channel(&ids, g.id, "v", ChannelKind::Voice, 1);
    store.guilds.create_guild(&g, &[text.clone(), voice.clone()]).await.unwrap();
    assert_eq!(store.channels.channel(voice.id).await.unwrap().unwrap().voice_mode, Some(VoiceMode::Hybrid));
    assert_eq!(store.channels.channel(text.id).await.unwrap().unwrap().voice_mode, None);
    assert!(store.channels.set_voice_mode(voice.id, VoiceMode::Mcu).await.unwrap());
    assert_eq!(store.channels.channel(voice.id).await.unwrap().unwrap().voice_mode, Some(VoiceMode::Mcu));
    assert!(!store.channels.set_voice_mode(text.id, VoiceMode::Sfu).await.unwrap(), "text channels have no mode");
    assert!(!store.channels.set_voice_mode(Id(424242), VoiceMode::Sfu).await.unwrap());
}

async fn roles_and_moderation(store: Store) {
    let ids = IdGen::new(1);
    let alice = new_user(&store, &ids, "alice").await;
    let bob = new_user(&store, &ids, "bob").await;
    let carol = new_user(&store, &ids, "carol").await;
    let (g, chans) = new_guild(&store, &ids, &alice, "g", &[("general", ChannelKind::Text)]).await;
    for u in [&bob, &carol] {
        store.guilds.create_invite(&invite(&format!("c-{}", u.username), &g, None, None)).await.unwrap();
        store.members.join_by_invite(&format!("c-{}", u.username), u.id, T0).await.unwrap();
    }
    // @everyone, then a role for bob: permissions OR together, rank is the highest position.
    let plain = store.roles.access(g.id, bob.id).await.unwrap().unwrap();
    assert_eq!((plain.owner, plain.permissions, plain.rank), (false, Permissions::EVERYONE_DEFAULT, 0));
    let role = |name: &str, p: Permissions, position| Role {
        id: ids.next(),
        guild_id: g.id,
        name: name.into(),
        permissions: p,
        position,
        created_at: T0,
    };
    let (kick, ban) = (role("kick", Permissions::KICK_MEMBERS, 1), role("ban", Permissions::BAN_MEMBERS, 3));
    store.roles.create_role(&kick).await.unwrap();
    store.roles.create_role(&ban).await.unwrap();
    assert_eq!(
        store.roles.roles(g.id).await.unwrap().iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![ban.id, kick.id, g.id]
    );
    assert!(store.roles.add_member_role(g.id, bob.id, kick.id).await.unwrap());
    assert!(!store.roles.add_member_role(g.id, bob.id, kick.id).await.unwrap(), "had it");
    assert!(store.roles.add_member_role(g.id, bob.id, ban.id).await.unwrap());
    let b = store.roles.access(g.id, bob.id).await.unwrap().unwrap();
    assert_eq!(b.permissions, Permissions::EVERYONE_DEFAULT | Permissions::KICK_MEMBERS | Permissions::BAN_MEMBERS);
    assert_eq!(b.rank, 3);
    assert_eq!(store.roles.access(g.id, alice.id).await.unwrap().unwrap().rank, i64::MAX);
    let members = store.members.members(g.id).await.unwrap();
    assert_eq!(members.iter().find(|m| m.user_id == bob.id).unwrap().roles, vec![ban.id, kick.id]);
    let stranger = new_user(&store, &ids, "stranger").await;
    assert_not_found(store.roles.add_member_role(g.id, stranger.id, kick.id).await, "member");
    assert!(store.roles.access(g.id, stranger.id).await.unwrap().is_none());
    let renamed = Role { name: "kicker".into(), position: 2, ..kick.clone() };
    assert!(store.roles.update_role(&renamed).await.unwrap());
    assert!(!store.roles.delete_role(g.id, g.id).await.unwrap(), "@everyone stays");
    assert!(store.roles.delete_role(g.id, ban.id).await.unwrap());
    let b = store.roles.access(g.id, bob.id).await.unwrap().unwrap();
    assert_eq!((b.rank, b.permissions.contains(Permissions::BAN_MEMBERS)), (2, false), "the role went with it");
    assert!(store.roles.remove_member_role(g.id, bob.id, kick.id).await.unwrap());

    // Time-outs, bans (which end the membership, and refuse invites), the audit log.
    assert!(store.moderation.set_timeout(g.id, carol.id, Some(T0 + 60_000)).await.unwrap());
    assert_eq!(store.roles.access(g.id, carol.id).await.unwrap().unwrap().timeout_until, Some(T0 + 60_000));
    assert!(store.moderation.set_timeout(g.id, carol.id, None).await.unwrap());
    assert!(!store.moderation.set_timeout(g.id, stranger.id, None).await.unwrap());
    let b = Ban {
        guild_id: g.id,
        user_id: carol.id,
        username: "carol".into(),
        moderator_id: alice.id,
        reason: "r".into(),
        created_at: T0,
    };
    assert!(store.moderation.ban(&b).await.unwrap(), "was a member");
    assert!(!store.moderation.ban(&b).await.unwrap(), "banning again only updates");
    assert!(store.moderation.is_banned(g.id, carol.id).await.unwrap());
    assert!(!store.members.is_member(g.id, carol.id).await.unwrap());
    assert_eq!(store.moderation.bans(g.id).await.unwrap(), vec![b.clone()]);
    assert!(matches!(store.members.join_by_invite("c-carol", carol.id, T0).await, Err(StoreError::Banned)));
    assert!(store.moderation.unban(g.id, carol.id).await.unwrap());
    assert!(!store.moderation.unban(g.id, carol.id).await.unwrap());
    store.members.join_by_invite("c-carol", carol.id, T0).await.unwrap();
    let entries: Vec<AuditEntry> = (0..3)
        .map(|i| AuditEntry {
            id: ids.next(),
            guild_id: g.id,
            actor_id: alice.id,
            action: format!("a{i}"),
            target_id: (i > 0).then_some(bob.id),
            reason: String::new(),
            created_at: T0 + i,
        })
        .collect();
    for e in &entries {
        store.moderation.log(e).await.unwrap();
    }
    let log = store.moderation.audit_log(g.id, None, 2).await.unwrap();
    assert_eq!(log, vec![entries[2].clone(), entries[1].clone()]);
    assert_eq!(store.moderation.audit_log(g.id, Some(entries[1].id), 10).await.unwrap(), vec![entries[0].clone()]);

    // Invites listed and revoked; channels and the guild deleted with what is in them.
    assert_eq!(store.guilds.invites(g.id).await.unwrap().len(), 2);
    assert_eq!(store.guilds.invite("c-bob").await.unwrap().unwrap().uses, 1);
    assert!(store.guilds.delete_invite("c-bob").await.unwrap());
    assert!(store.guilds.invite("c-bob").await.unwrap().is_none());
    assert!(store.guilds.rename_guild(g.id, "h").await.unwrap());
    assert_eq!(store.guilds.guild(g.id).await.unwrap().unwrap().name, "h");
    let m = post(&store, &ids, &chans[0], &bob, "hi", &[]).await;
    let extra = channel(&ids, g.id, "extra", ChannelKind::Text, 1);
    store.channels.create_channel(&extra).await.unwrap();
    assert!(store.channels.delete_channel(extra.id).await.unwrap());
    assert!(!store.channels.delete_channel(extra.id).await.unwrap());
    assert!(store.guilds.delete_guild(g.id).await.unwrap());
    assert!(store.guilds.guild(g.id).await.unwrap().is_none());
    assert!(store.messages.message(m.id).await.unwrap().is_none(), "its messages went");
    assert!(store.roles.roles(g.id).await.unwrap().is_empty());
    assert!(store.guilds.guilds_of(bob.id).await.unwrap().is_empty());
    assert!(!store.guilds.delete_guild(g.id).await.unwrap());
}
