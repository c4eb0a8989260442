//! Guild permissions: a bitfield with Discord's bit values, so clients that know Discord's can
//! read ours. A member's permissions are the OR of `@everyone` (the role whose id is the guild's)
//! and their roles'; the owner and `ADMINISTRATOR` have all of them. Served as a decimal string,
//! as Discord does (the high bits exceed JavaScript's safe integers in general).
//!
//! Seniority ([`Access::rank`]): the owner outranks everyone, otherwise a member ranks as their
//! highest role's position. A member may act on (kick, ban, time out, assign roles to) only those
//! they outrank, and may give a role only permissions they hold themselves: so no one can raise
//! themselves or their peers.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The owner's rank as served (JavaScript's largest safe integer; positions stay far below it).
pub const MAX_SAFE_RANK: i64 = (1 << 53) - 1;
/// The highest position a role may have.
pub const MAX_POSITION: i64 = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Permissions(pub u64);

impl Permissions {
    pub const CREATE_INVITE: Permissions = Permissions(1 << 0);
    pub const KICK_MEMBERS: Permissions = Permissions(1 << 1);
    pub const BAN_MEMBERS: Permissions = Permissions(1 << 2);
    pub const ADMINISTRATOR: Permissions = Permissions(1 << 3);
    pub const MANAGE_CHANNELS: Permissions = Permissions(1 << 4);
    /// Rename the server, manage its invites and live streams.
    pub const MANAGE_GUILD: Permissions = Permissions(1 << 5);
    /// Read the audit log.
    pub const VIEW_AUDIT_LOG: Permissions = Permissions(1 << 7);
    /// Delete others' messages, and see and resolve reports.
    pub const MANAGE_MESSAGES: Permissions = Permissions(1 << 13);
    /// Server-mute others in voice.
    pub const MUTE_MEMBERS: Permissions = Permissions(1 << 22);
    pub const MANAGE_ROLES: Permissions = Permissions(1 << 28);
    /// Time members out.
    pub const MODERATE_MEMBERS: Permissions = Permissions(1 << 40);

    pub const NONE: Permissions = Permissions(0);
    /// Every bit defined here.
    pub const ALL: Permissions = Permissions(
        Self::CREATE_INVITE.0
            | Self::KICK_MEMBERS.0
            | Self::BAN_MEMBERS.0
            | Self::ADMINISTRATOR.0
            | Self::MANAGE_CHANNELS.0
            | Self::MANAGE_GUILD.0
            | Self::VIEW_AUDIT_LOG.0
            | Self::MANAGE_MESSAGES.0
            | Self::MUTE_MEMBERS.0
            | Self::MANAGE_ROLES.0
            | Self::MODERATE_MEMBERS.0,
    );
    /// What `@everyone` of a new guild may do.
    pub const EVERYONE_DEFAULT: Permissions = Self::CREATE_INVITE;

    /// The names, for the web client's role editor and for error messages.
    pub const NAMES: [(Permissions, &'static str); 11] = [
        (Self::ADMINISTRATOR, "ADMINISTRATOR"),
        (Self::MANAGE_GUILD, "MANAGE_GUILD"),
        (Self::MANAGE_ROLES, "MANAGE_ROLES"),
        (Self::MANAGE_CHANNELS, "MANAGE_CHANNELS"),
        (Self::KICK_MEMBERS, "KICK_MEMBERS"),
        (Self::BAN_MEMBERS, "BAN_MEMBERS"),
        (Self::MODERATE_MEMBERS, "MODERATE_MEMBERS"),
        (Self::MANAGE_MESSAGES, "MANAGE_MESSAGES"),
        (Self::MUTE_MEMBERS, "MUTE_MEMBERS"),
        (Self::VIEW_AUDIT_LOG, "VIEW_AUDIT_LOG"),
        (Self::CREATE_INVITE, "CREATE_INVITE"),
    ];

    pub fn contains(self, other: Permissions) -> bool {
        self.0 & other.0 == other.0
    }

    /// Unknown bits dropped.
    pub fn known(self) -> Permissions {
        Permissions(self.0 & Self::ALL.0)
    }

    pub fn name(self) -> &'static str {
        Self::NAMES.iter().find(|(p, _)| *p == self).map_or("UNKNOWN", |(_, n)| n)
    }
}

impl std::ops::BitOr for Permissions {
    type Output = Permissions;
    fn bitor(self, rhs: Permissions) -> Permissions {
        Permissions(self.0 | rhs.0)
    }
}

impl Serialize for Permissions {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

/// A decimal string (Discord's form) or a number.
impl<'de> Deserialize<'de> for Permissions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(Permissions(n)),
            Raw::S(s) => {
                s.parse().map(Permissions).map_err(|_| serde::de::Error::custom("permissions: a decimal number"))
            }
        }
    }
}

/// What a member may do in a guild, as [`crate::store::RoleStore::access`] computes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    pub owner: bool,
    /// Their own bits (owner and administrator aside: see [`Access::has`]).
    pub permissions: Permissions,
    /// Their highest role's position; the owner's is `i64::MAX`.
    pub rank: i64,
    /// Timed out until then (unix ms), if ever.
    pub timeout_until: Option<i64>,
}

impl Access {
    pub fn has(&self, p: Permissions) -> bool {
        self.owner || self.permissions.contains(Permissions::ADMINISTRATOR) || self.permissions.contains(p)
    }

    /// Everything they may grant.
    pub fn effective(&self) -> Permissions {
        if self.owner || self.permissions.contains(Permissions::ADMINISTRATOR) {
            Permissions::ALL
        } else {
            self.permissions.known()
        }
    }

    pub fn timed_out(&self, now_ms: i64) -> bool {
        !self.owner && self.timeout_until.is_some_and(|t| t > now_ms)
    }

    /// Whether they may act on a member of `other`'s standing.
    pub fn outranks(&self, other: &Access) -> bool {
        !other.owner && (self.owner || self.rank > other.rank)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(bits: Permissions, rank: i64) -> Access {
        Access { owner: false, permissions: bits, rank, timeout_until: None }
    }

    #[test]
    fn administrator_and_owner_have_everything() {
        let admin = member(Permissions::ADMINISTRATOR, 1);
        assert!(admin.has(Permissions::BAN_MEMBERS) && admin.effective() == Permissions::ALL);
        let plain = member(Permissions::CREATE_INVITE, 0);
        assert!(!plain.has(Permissions::KICK_MEMBERS) && plain.has(Permissions::CREATE_INVITE));
        let owner =
            Access { owner: true, permissions: Permissions::NONE, rank: i64::MAX, timeout_until: Some(i64::MAX) };
        assert!(owner.has(Permissions::MANAGE_ROLES) && !owner.timed_out(0), "an owner cannot be timed out");
    }

    #[test]
    fn rank_decides_who_may_act_on_whom() {
        let owner = Access { owner: true, permissions: Permissions::NONE, rank: i64::MAX, timeout_until: None };
        let (mod2, mod1, plain) =
            (member(Permissions::KICK_MEMBERS, 2), member(Permissions::KICK_MEMBERS, 1), member(Permissions::NONE, 0));
        assert!(owner.outranks(&mod2) && mod2.outranks(&mod1) && mod1.outranks(&plain));
        assert!(!mod1.outranks(&mod1) && !mod1.outranks(&mod2) && !mod2.outranks(&owner) && !owner.outranks(&owner));
    }

    #[test]
    fn permissions_serialise_as_strings_and_read_both_forms() {
        let p = Permissions::MODERATE_MEMBERS | Permissions::CREATE_INVITE;
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"1099511627777\"");
        assert_eq!(serde_json::from_str::<Permissions>("\"1099511627777\"").unwrap(), p);
        assert_eq!(serde_json::from_str::<Permissions>("6").unwrap(), Permissions(6));
        assert!(serde_json::from_str::<Permissions>("\"x\"").is_err());
        assert_eq!(Permissions(u64::MAX).known(), Permissions::ALL);
    }
}
