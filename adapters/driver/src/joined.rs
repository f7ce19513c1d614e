//! Waiting for a join to take: [`Handle::joined`], and why each contact
//! failed when it does not ([`JoinError`], [`ContactFailure`]).
//!
//! A join never fails silently: the node keeps retrying its contacts with
//! backoff (see [`Node::join`](epidemic_core::node::Node::join)), and the
//! driver remembers, for each contact given to a join (at most
//! [`MAX_CONTACTS`]), the last reason it failed. [`Handle::joined`] resolves
//! once the node has the neighbours asked for, or with those reasons when
//! the wait ends.

use crate::driver::Command;
use crate::handle::Handle;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

/// Join contacts whose failures are remembered; older ones are forgotten
/// first. A node is given a handful of contacts (HyParView remembers four
/// by default), so 64 is room to spare while keeping the map bounded
/// whatever the application passes.
pub const MAX_CONTACTS: usize = 64;

/// Why a join contact has not made this node a neighbour: the last failure
/// seen for it. The text carried is for people (the I/O error, the rustls
/// reason); match on the variant.
///
/// A transport tells the driver a reason of its own by returning it inside
/// the `io::Error` of [`Transport::connect`](crate::Transport::connect)
/// (`io::Error::other(failure)`); otherwise the driver reads the error: a
/// rustls error is [`TlsRefused`](Self::TlsRefused), a refused or
/// unroutable connection [`Unreachable`](Self::Unreachable).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContactFailure {
    /// No connection: refused (nothing listens on that port, for that
    /// transport), unroutable, or no answer to the transport's handshake
    /// before the connect timeout. A QUIC node dialling a TCP port, or a
    /// TCP node dialling a QUIC (UDP) port, ends here too: nothing of the
    /// other transport answers at all.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The TLS handshake failed, with rustls's reason: this node refused
    /// the contact's certificate (for instance `UnknownIssuer`: another
    /// cluster's CA), or the contact refused this node's (the alert it
    /// sent, for instance `received fatal alert: UnknownCA`).
    #[error("TLS refused: {0}")]
    TlsRefused(String),
    /// The contact answered in another protocol than the one dialled: a
    /// TLS record where a plaintext handshake was expected (this node runs
    /// in plaintext, the contact in TLS), or bytes that are not a handshake.
    #[error("wrong transport: {0}")]
    WrongTransport(String),
    /// The contact closed the connection before answering, without a
    /// reason. It may be stopping or over its handshake limits, or may not
    /// speak TLS at all (this node dials in TLS, the contact runs in
    /// plaintext): none of these says why.
    #[error("hung up: {0}")]
    HungUp(String),
    /// The contact answered and refused: it is full or shutting down (at
    /// the handshake), or it refused the join itself.
    #[error("refused by the peer: {0}")]
    RefusedByPeer(String),
    /// Another node answers at this address.
    #[error("another node answers at this address ({0})")]
    OtherNode(SocketAddr),
    /// The contact was reached, but did not answer: the handshake before
    /// the connect timeout, or the join before HyParView's
    /// `neighbor_timeout`.
    #[error("silent: {0}")]
    Silent(String),
    /// No failure seen, and no answer either: a dial or join through it
    /// was still under way, or not tried yet (the node tries its contacts
    /// in turn), when the wait ended.
    #[error("no answer yet")]
    NoAnswer,
}

impl ContactFailure {
    /// Reads why a transport's connect (`handshake: false`) or the
    /// exchange of node handshakes after it (`handshake: true`) failed with
    /// `error`.
    pub(crate) fn from_io(error: &io::Error, handshake: bool) -> ContactFailure {
        if let Some(inner) = error.get_ref() {
            if let Some(failure) = inner.downcast_ref::<ContactFailure>() {
                return failure.clone();
            }
            if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
                return ContactFailure::TlsRefused(tls.to_string());
            }
        }
        use io::ErrorKind as K;
        match error.kind() {
            K::UnexpectedEof | K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => {
                let when = if handshake {
                    "before answering the handshake"
                } else {
                    "during the transport handshake"
                };
                ContactFailure::HungUp(format!("closed the connection {when} ({error})"))
            }
            K::InvalidData => ContactFailure::WrongTransport(error.to_string()),
            _ if handshake => ContactFailure::HungUp(error.to_string()),
            _ => ContactFailure::Unreachable(error.to_string()),
        }
    }
}

/// What [`Handle::joined`] waits for. Build it from `Default` and set
/// fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct JoinWait {
    /// Neighbours the node must have; at least one is waited for.
    ///
    /// Default: `1`: one neighbour is a node in the overlay, and HyParView
    /// fills the rest of its active view from there.
    pub neighbors: usize,
    /// How long to wait before giving up with [`JoinError::Timeout`]. The
    /// node keeps retrying its contacts after that; only the wait ends.
    ///
    /// Default: `Duration::from_secs(30)`: a failed join is retried after
    /// HyParView's `neighbor_timeout` (5 s) with jittered exponential
    /// backoff, so 30 s covers a contact that answers only at the third or
    /// fourth try (about 5 + 10 + 20 s at worst, half that on average),
    /// while a misconfigured node still says why within half a minute.
    pub timeout: Duration,
}

impl Default for JoinWait {
    fn default() -> Self {
        JoinWait {
            neighbors: 1,
            timeout: Duration::from_secs(30),
        }
    }
}

/// Why [`Handle::joined`] gave up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JoinError {
    /// The node did not have [`JoinWait::neighbors`] neighbours within
    /// [`JoinWait::timeout`]. It keeps trying; this says why it has not
    /// succeeded yet.
    #[error("{}", timeout_message(*.neighbors, *.wanted, .contacts))]
    Timeout {
        /// Neighbours the node had when the wait ended.
        neighbors: usize,
        /// Neighbours waited for.
        wanted: usize,
        /// Each remembered join contact that is not a neighbour, oldest
        /// first, with the last reason it failed.
        contacts: Vec<(SocketAddr, ContactFailure)>,
    },
    /// The node has shut down.
    #[error("the node has shut down")]
    Shutdown,
}

fn timeout_message(neighbors: usize, wanted: usize, contacts: &[(SocketAddr, ContactFailure)]) -> String {
    use fmt::Write as _;
    let mut s = format!("not joined: {neighbors} of {wanted} neighbour(s)");
    if contacts.is_empty() {
        s.push_str("; no join contact to report on");
    }
    for (i, (addr, why)) in contacts.iter().enumerate() {
        let sep = if i == 0 { "; " } else { ", " };
        let _ = write!(s, "{sep}{addr}: {why}");
    }
    s
}

impl Handle {
    /// Resolves once the node has at least [`JoinWait::neighbors`] overlay
    /// neighbours (at once if it has them already), or with
    /// [`JoinError::Timeout`] after [`JoinWait::timeout`], naming why each
    /// join contact failed ([`ContactFailure`]). The loop completes the
    /// wait when a neighbour comes up, and its own timer ends it: nothing
    /// polls. Waiting does not change what the node does; it keeps retrying
    /// its contacts after a timeout.
    pub async fn joined(&self, wait: JoinWait) -> Result<(), JoinError> {
        let wait = JoinWait {
            neighbors: wait.neighbors.max(1),
            ..wait
        };
        match self.request(|reply| Command::Joined { wait, reply }).await {
            Ok(result) => result,
            Err(_) => Err(JoinError::Shutdown),
        }
    }

    /// [`Handle::join`] through `contacts`, then [`Handle::joined`].
    pub async fn join_and_wait(
        &self,
        contacts: impl IntoIterator<Item = SocketAddr>,
        wait: JoinWait,
    ) -> Result<(), JoinError> {
        // `join` fails only when the node has stopped.
        self.join(contacts).await.map_err(|_| JoinError::Shutdown)?;
        self.joined(wait).await
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn io_errors_are_read_into_reasons() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert!(matches!(
            ContactFailure::from_io(&refused, false),
            ContactFailure::Unreachable(_)
        ));
        let tls = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        match ContactFailure::from_io(&tls, false) {
            ContactFailure::TlsRefused(why) => assert!(why.contains("UnknownIssuer"), "{why}"),
            other => panic!("{other:?}"),
        }
        let own = io::Error::other(ContactFailure::RefusedByPeer("busy".into()));
        assert_eq!(
            ContactFailure::from_io(&own, false),
            ContactFailure::RefusedByPeer("busy".into())
        );
        let eof = io::Error::from(io::ErrorKind::UnexpectedEof);
        assert!(matches!(ContactFailure::from_io(&eof, true), ContactFailure::HungUp(_)));
    }

    #[test]
    fn a_timeout_names_each_contact_and_its_reason() {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2".parse().unwrap();
        let e = JoinError::Timeout {
            neighbors: 0,
            wanted: 1,
            contacts: vec![
                (a, ContactFailure::Unreachable("connection refused".into())),
                (
                    b,
                    ContactFailure::TlsRefused("invalid peer certificate: UnknownIssuer".into()),
                ),
            ],
        };
        let text = e.to_string();
        assert!(text.contains("0 of 1"), "{text}");
        assert!(text.contains("127.0.0.1:1: unreachable: connection refused"), "{text}");
        assert!(
            text.contains("127.0.0.1:2: TLS refused: invalid peer certificate: UnknownIssuer"),
            "{text}"
        );
    }
}
