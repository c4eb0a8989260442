//! Which peer a datagram on the shared socket belongs to, without scanning peers.
//!
//! Known source addresses map straight to a peer. A new address can only be learnt from a STUN
//! binding request: its USERNAME starts with the server ufrag we chose for that peer, and the
//! engine confirms it with `Rtc::accepts` (which checks MESSAGE-INTEGRITY) before calling
//! [`Router::learn`], so a spoofed packet cannot steal a peer's route.

use std::collections::HashMap;

use rustc_hash::FxHashMap;
use std::net::SocketAddr;

use crate::PeerId;

/// Addresses remembered per peer (ICE may nominate a new pair, NATs rebind); the oldest is forgotten.
const MAX_ADDRS: usize = 4;

#[derive(Debug, Default)]
pub struct Router {
    /// Fx hashing for the per-packet lookups: keys are peers' own learnt addresses (inserted only
    /// after a STUN check), so nobody can flood the map with colliding ones.
    by_addr: FxHashMap<SocketAddr, PeerId>,
    by_ufrag: HashMap<String, PeerId>,
    peers: FxHashMap<PeerId, Routes>,
}

#[derive(Debug)]
struct Routes {
    ufrag: String,
    addrs: Vec<SocketAddr>,
}

impl Router {
    /// Registers `peer` under its server ufrag; false if the ufrag is taken.
    pub fn add(&mut self, peer: PeerId, ufrag: String) -> bool {
        if self.by_ufrag.contains_key(&ufrag) || self.peers.contains_key(&peer) {
            return false;
        }
        self.by_ufrag.insert(ufrag.clone(), peer);
        self.peers.insert(peer, Routes { ufrag, addrs: Vec::new() });
        true
    }

    pub fn by_addr(&self, addr: SocketAddr) -> Option<PeerId> {
        self.by_addr.get(&addr).copied()
    }

    /// The peer a STUN binding request is addressed to, by the server half of its USERNAME.
    pub fn by_stun(&self, buf: &[u8]) -> Option<PeerId> {
        self.by_ufrag.get(stun_server_ufrag(buf)?).copied()
    }

    /// Routes `addr` to `peer` from now on (it moved, or the address changed hands).
    pub fn learn(&mut self, addr: SocketAddr, peer: PeerId) {
        if let Some(old) = self.by_addr.insert(addr, peer).filter(|old| *old != peer)
            && let Some(r) = self.peers.get_mut(&old)
        {
            r.addrs.retain(|a| *a != addr);
        }
        let Some(r) = self.peers.get_mut(&peer) else { return };
        if r.addrs.contains(&addr) {
            return;
        }
        if r.addrs.len() == MAX_ADDRS {
            let gone = r.addrs.remove(0);
            self.by_addr.remove(&gone);
        }
        r.addrs.push(addr);
    }

    /// Forgets everything of `peer`.
    pub fn remove(&mut self, peer: PeerId) {
        let Some(r) = self.peers.remove(&peer) else { return };
        self.by_ufrag.remove(&r.ufrag);
        for a in r.addrs {
            self.by_addr.remove(&a);
        }
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.peers.is_empty() && self.by_addr.is_empty() && self.by_ufrag.is_empty()
    }
}

/// For a STUN binding request, the part of USERNAME before ':' (the responder's ufrag: ours).
pub fn stun_server_ufrag(buf: &[u8]) -> Option<&str> {
    const MAGIC: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
    const USERNAME: u16 = 0x0006;
    if buf.len() < 20 || buf[0..2] != [0x00, 0x01] || buf[4..8] != MAGIC {
        return None;
    }
    let end = (20 + usize::from(u16::from_be_bytes([buf[2], buf[3]]))).min(buf.len());
    let mut i = 20;
    while i + 4 <= end {
        let typ = u16::from_be_bytes([buf[i], buf[i + 1]]);
        let len = usize::from(u16::from_be_bytes([buf[i + 2], buf[i + 3]]));
        let value = buf.get(i + 4..i + 4 + len)?;
        if typ == USERNAME {
            return std::str::from_utf8(value).ok()?.split(':').next();
        }
        i += 4 + ((len + 3) & !3);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A binding request carrying only USERNAME.
    fn binding_request(username: &str) -> Vec<u8> {
        let padded = (username.len() + 3) & !3;
        let mut b = vec![0x00, 0x01];
        b.extend_from_slice(&((4 + padded) as u16).to_be_bytes());
        b.extend_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
        b.extend_from_slice(&[7; 12]);
        b.extend_from_slice(&[0x80, 0x22, 0x00, 0x00]); // SOFTWARE, empty: skipped
        b.extend_from_slice(&[0x00, 0x06]);
        b.extend_from_slice(&(username.len() as u16).to_be_bytes());
        b.extend_from_slice(username.as_bytes());
        b.resize(b.len() + padded - username.len(), 0);
        let len = (b.len() - 20) as u16;
        b[2..4].copy_from_slice(&len.to_be_bytes());
        b
    }

    #[test]
    fn parses_username_and_rejects_junk() {
        assert_eq!(stun_server_ufrag(&binding_request("srv1:cli")), Some("srv1"));
        assert_eq!(stun_server_ufrag(&binding_request("abc")), Some("abc"));
        let mut truncated = binding_request("srv1:cli");
        truncated.truncate(30);
        assert_eq!(stun_server_ufrag(&truncated), None);
        assert_eq!(stun_server_ufrag(&binding_request("srv1:cli")[..19]), None);
        let mut response = binding_request("srv1:cli");
        response[1] = 0x01;
        response[0] = 0x01;
        assert_eq!(stun_server_ufrag(&response), None);
        assert_eq!(stun_server_ufrag(&[0x80; 200]), None);
        // A length field pointing past the end never indexes out of bounds.
        let mut long = binding_request("srv1:cli");
        long[2] = 0xff;
        long[26..28].copy_from_slice(&0xfff0u16.to_be_bytes());
        assert_eq!(stun_server_ufrag(&long), None);
    }

    #[test]
    fn routes_by_ufrag_then_address_and_cleans_up() {
        let mut r = Router::default();
        assert!(r.add(1, "aaaa".into()));
        assert!(r.add(2, "bbbb".into()));
        assert!(!r.add(3, "aaaa".into()));
        assert_eq!(r.by_stun(&binding_request("bbbb:x")), Some(2));
        assert_eq!(r.by_stun(&binding_request("cccc:x")), None);
        let a: SocketAddr = "127.0.0.1:1000".parse().unwrap();
        r.learn(a, 2);
        assert_eq!(r.by_addr(a), Some(2));
        // The address changes hands (port reuse): the old owner forgets it.
        r.learn(a, 1);
        assert_eq!(r.by_addr(a), Some(1));
        r.remove(2);
        assert_eq!(r.by_addr(a), Some(1));
        for port in 2000..2010 {
            r.learn(SocketAddr::new(a.ip(), port), 1);
        }
        assert_eq!(r.by_addr(a), None, "oldest addresses are forgotten");
        r.remove(1);
        assert!(r.is_empty());
    }
}
