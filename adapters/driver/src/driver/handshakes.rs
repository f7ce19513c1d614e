//! Inbound connections that have not said hello yet, kept apart from
//! established links and bounded in all and per source address, so that
//! connections that never finish their handshake (a slowloris, with no
//! certificate needed) cannot take the slots a joiner needs. Sans-IO: the
//! loop asks before it spawns a handshake, and says when one ends.

use crate::link::ConnId;
use std::collections::HashMap;
use std::net::IpAddr;

/// Why an inbound connection was refused before its handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    /// `max_handshakes` handshakes are running.
    Full,
    /// Its address runs `max_handshakes_per_ip` already.
    PerAddress,
}

/// The handshakes running, by connection and by source address.
#[derive(Debug, Default)]
pub(super) struct Handshakes {
    by_conn: HashMap<ConnId, IpAddr>,
    by_ip: HashMap<IpAddr, usize>,
}

impl Handshakes {
    /// Admits `conn` from `ip` if both bounds allow.
    pub(super) fn admit(&mut self, conn: ConnId, ip: IpAddr, max: usize, per_ip: usize) -> Result<(), Refusal> {
        if self.by_conn.len() >= max {
            return Err(Refusal::Full);
        }
        let n = self.by_ip.entry(ip).or_insert(0);
        if *n >= per_ip {
            return Err(Refusal::PerAddress);
        }
        *n += 1;
        self.by_conn.insert(conn, ip);
        Ok(())
    }

    /// `conn`'s handshake ended (hello received, failed or timed out).
    pub(super) fn done(&mut self, conn: ConnId) {
        let Some(ip) = self.by_conn.remove(&conn) else {
            return;
        };
        if let Some(n) = self.by_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.by_ip.remove(&ip);
            }
        }
    }

    /// Handshakes running now.
    pub(super) fn len(&self) -> usize {
        self.by_conn.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_hold_in_all_and_per_address_and_free_on_done() {
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let mut h = Handshakes::default();
        assert_eq!(h.admit(1, a, 3, 2), Ok(()));
        assert_eq!(h.admit(2, a, 3, 2), Ok(()));
        assert_eq!(h.admit(3, a, 3, 2), Err(Refusal::PerAddress));
        assert_eq!(h.admit(4, b, 3, 2), Ok(()));
        assert_eq!(h.admit(5, b, 3, 2), Err(Refusal::Full));
        h.done(1);
        h.done(1); // twice is harmless
        assert_eq!(h.len(), 2);
        assert_eq!(h.admit(6, a, 3, 2), Ok(()));
        for conn in [2, 4, 6] {
            h.done(conn);
        }
        assert_eq!(h.len(), 0);
        assert!(h.by_ip.is_empty(), "no address left behind");
    }
}
