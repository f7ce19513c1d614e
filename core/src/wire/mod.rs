//! Versioned frames: what crosses the wire between two nodes.
//!
//! ```text
//!  0        1        2 ...
//! +--------+--------+---------------------------+
//! |version |  kind  |  postcard-encoded body     |
//! +--------+--------+---------------------------+
//! ```
//!
//! - `version` is `PROTOCOL_VERSION`. A frame of any other version is
//!   refused with [`WireError::UnsupportedVersion`]; nodes of different
//!   protocol versions do not talk rather than misread each other.
//! - `kind` says which protocol the body belongs to ([`Kind`]). An unknown
//!   kind is [`WireError::UnknownKind`], never a panic.
//! - The body is postcard, so it is compact and its encoding is fixed by the
//!   postcard 1.x wire specification rather than by a compiler.
//!
//! The frame's length is checked against the configured maximum *before*
//! anything is decoded or allocated. Length-prefixed transports (TCP, QUIC)
//! read the prefix, compare it with the same maximum, and only then allocate
//! the buffer; see [`check_len`].
//!
//! Decoding is total: every byte string either decodes or yields a typed
//! [`WireError`]. The protocol layers validate decoded messages further (list
//! lengths, for instance) and report violations as [`WireError::Invalid`].
//! The messages themselves live with their protocols, and the node's
//! top-level [`node::Message`](crate::node::Message) with the node.

/// The node's frame message, at its old path: it lives in
/// [`node`](crate::node) now. A compatibility alias, hidden, to be removed.
#[doc(hidden)]
pub use crate::node::Message;
use alloc::vec::Vec;
use core::fmt;
use serde::{Serialize, de::DeserializeOwned};

/// The protocol version this build speaks.
#[doc(hidden)]
pub const PROTOCOL_VERSION: u8 = 1;

/// Bytes before the body: version and kind.
#[doc(hidden)]
pub const HEADER_LEN: usize = 2;

/// The default upper bound on a frame, header included: 1 MiB.
///
/// Large enough for a 64 KiB broadcast payload with room to spare, and for a
/// batch of several thousand segment key hashes in an anti-entropy exchange;
/// small enough that a hostile length prefix cannot make a node allocate
/// much. Transports use the same figure for their length prefixes.
pub const DEFAULT_MAX_FRAME: usize = 1 << 20;

/// Which protocol a frame's body belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[repr(u8)]
#[doc(hidden)]
pub enum Kind {
    /// HyParView membership (join, shuffle, neighbor, disconnect).
    HyParView = 1,
    /// Full-mesh membership gossip.
    Mesh = 2,
    /// Plumtree broadcast (gossip, IHAVE, GRAFT, PRUNE).
    Plumtree = 3,
    /// Plumtree broadcast of metadata writes: the same messages, with
    /// metadata ids and encoded objects as payloads.
    Metadata = 4,
    /// Metadata anti-entropy (hash-tree exchange, repair) and tombstone
    /// collection.
    AntiEntropy = 5,
    /// A channel's messages: an application handler's own Plumtree engine
    /// and its direct messages ([`node::channel`](crate::node::channel)).
    Channel = 6,
}

impl Kind {
    /// The kind for a header byte, if there is one.
    pub const fn from_u8(b: u8) -> Option<Kind> {
        match b {
            1 => Some(Kind::HyParView),
            2 => Some(Kind::Mesh),
            3 => Some(Kind::Plumtree),
            4 => Some(Kind::Metadata),
            5 => Some(Kind::AntiEntropy),
            6 => Some(Kind::Channel),
            _ => None,
        }
    }
}

/// Why a frame could not be decoded.
///
/// None of these affect the receiving node's state: the frame is dropped and
/// counted, and the driver closes the link that sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireError {
    /// Fewer bytes than a frame header.
    Truncated {
        /// Bytes received.
        len: usize,
    },
    /// The frame is longer than the configured maximum.
    TooLarge {
        /// The frame's length.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The frame's protocol version is not `PROTOCOL_VERSION`.
    UnsupportedVersion(u8),
    /// The kind byte names no known protocol.
    UnknownKind(u8),
    /// The body is not a valid postcard encoding of the kind's message.
    Malformed,
    /// The body decoded, but bytes were left over.
    TrailingBytes(usize),
    /// The body decoded but breaks a protocol rule (a list too long, say).
    Invalid(&'static str),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Truncated { len } => write!(f, "frame of {len} bytes is shorter than its header"),
            WireError::TooLarge { len, max } => write!(f, "frame of {len} bytes exceeds the maximum of {max}"),
            WireError::UnsupportedVersion(v) => {
                write!(
                    f,
                    "protocol version {v} is not supported (this node speaks {PROTOCOL_VERSION})"
                )
            }
            WireError::UnknownKind(k) => write!(f, "unknown message kind {k}"),
            WireError::Malformed => f.write_str("malformed message body"),
            WireError::TrailingBytes(n) => write!(f, "{n} bytes left over after the message body"),
            WireError::Invalid(why) => write!(f, "invalid message: {why}"),
        }
    }
}

impl core::error::Error for WireError {}

/// Why a message could not be encoded.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// The encoded frame would exceed the maximum frame size.
    TooLarge {
        /// The encoded length.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The serializer refused the value.
    Serialize,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::TooLarge { len, max } => {
                write!(f, "encoded frame of {len} bytes exceeds the maximum of {max}")
            }
            EncodeError::Serialize => f.write_str("message could not be serialized"),
        }
    }
}

impl core::error::Error for EncodeError {}

/// Checks a frame length (from a length prefix, say) against `max` before any
/// buffer is allocated for it.
#[doc(hidden)]
pub const fn check_len(len: usize, max: usize) -> Result<(), WireError> {
    if len > max {
        Err(WireError::TooLarge { len, max })
    } else {
        Ok(())
    }
}

/// Encodes `body` as a frame of `kind`, appending to `out`.
///
/// On error `out` is left as it was.
#[doc(hidden)]
pub fn encode_into<T: Serialize + ?Sized>(
    kind: Kind,
    body: &T,
    max: usize,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let start = out.len();
    out.push(PROTOCOL_VERSION);
    out.push(kind as u8);
    let buf = core::mem::take(out);
    match postcard::to_extend(body, buf) {
        Ok(buf) => *out = buf,
        Err(_) => return Err(EncodeError::Serialize),
    }
    let len = out.len() - start;
    if len > max {
        out.truncate(start);
        return Err(EncodeError::TooLarge { len, max });
    }
    Ok(())
}

/// Encodes `body` as a new frame of `kind`.
#[doc(hidden)]
pub fn encode<T: Serialize + ?Sized>(kind: Kind, body: &T, max: usize) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    encode_into(kind, body, max, &mut out)?;
    Ok(out)
}

/// Splits a frame into its kind and body after checking length, version and
/// kind. Nothing is allocated.
#[doc(hidden)]
pub fn split(frame: &[u8], max: usize) -> Result<(Kind, &[u8]), WireError> {
    check_len(frame.len(), max)?;
    let [version, kind, body @ ..] = frame else {
        return Err(WireError::Truncated { len: frame.len() });
    };
    if *version != PROTOCOL_VERSION {
        return Err(WireError::UnsupportedVersion(*version));
    }
    let kind = Kind::from_u8(*kind).ok_or(WireError::UnknownKind(*kind))?;
    Ok((kind, body))
}

/// Decodes a whole body; leftover bytes are an error, so a frame has exactly
/// one meaning.
#[doc(hidden)]
pub fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, WireError> {
    match postcard::take_from_bytes::<T>(body) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(WireError::TrailingBytes(rest.len())),
        Err(_) => Err(WireError::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;
    use alloc::vec;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Probe {
        n: u32,
        name: String,
        items: Vec<u64>,
    }

    fn probe() -> Probe {
        Probe {
            n: 7,
            name: "seven".into(),
            items: vec![1, 2, 3],
        }
    }

    #[test]
    fn round_trips() {
        let frame = encode(Kind::Plumtree, &probe(), DEFAULT_MAX_FRAME).unwrap();
        assert_eq!(frame[0], PROTOCOL_VERSION);
        assert_eq!(frame[1], Kind::Plumtree as u8);
        let (kind, body) = split(&frame, DEFAULT_MAX_FRAME).unwrap();
        assert_eq!(kind, Kind::Plumtree);
        assert_eq!(decode_body::<Probe>(body).unwrap(), probe());
    }

    #[test]
    fn refuses_oversized_frames_before_decoding() {
        let frame = encode(Kind::Mesh, &probe(), DEFAULT_MAX_FRAME).unwrap();
        let max = frame.len() - 1;
        assert_eq!(split(&frame, max), Err(WireError::TooLarge { len: frame.len(), max }));
        assert_eq!(
            check_len(4 << 30, DEFAULT_MAX_FRAME),
            Err(WireError::TooLarge {
                len: 4 << 30,
                max: DEFAULT_MAX_FRAME
            })
        );
        let mut out = vec![9u8];
        assert!(matches!(
            encode_into(Kind::Mesh, &probe(), 4, &mut out),
            Err(EncodeError::TooLarge { .. })
        ));
        assert_eq!(out, vec![9u8], "a failed encode leaves the buffer as it was");
    }

    #[test]
    fn header_errors_are_typed() {
        assert_eq!(split(&[], 100), Err(WireError::Truncated { len: 0 }));
        assert_eq!(split(&[PROTOCOL_VERSION], 100), Err(WireError::Truncated { len: 1 }));
        assert_eq!(
            split(&[PROTOCOL_VERSION + 1, 1, 0], 100),
            Err(WireError::UnsupportedVersion(PROTOCOL_VERSION + 1))
        );
        assert_eq!(split(&[PROTOCOL_VERSION, 0], 100), Err(WireError::UnknownKind(0)));
        assert_eq!(split(&[PROTOCOL_VERSION, 200], 100), Err(WireError::UnknownKind(200)));
    }

    #[test]
    fn body_errors_are_typed() {
        let frame = encode(Kind::HyParView, &probe(), DEFAULT_MAX_FRAME).unwrap();
        let (_, body) = split(&frame, DEFAULT_MAX_FRAME).unwrap();
        // Cut off half-way.
        assert_eq!(decode_body::<Probe>(&body[..body.len() / 2]), Err(WireError::Malformed));
        // Extra bytes.
        let mut long = body.to_vec();
        long.extend_from_slice(&[0, 0]);
        assert_eq!(decode_body::<Probe>(&long), Err(WireError::TrailingBytes(2)));
        // A declared length of u32::MAX elements with no bytes behind it must
        // fail without allocating for them.
        let hostile = [7u8, 0, 0xff, 0xff, 0xff, 0xff, 0x0f];
        assert_eq!(decode_body::<Probe>(&hostile), Err(WireError::Malformed));
    }

    #[test]
    fn every_header_byte_pair_is_handled() {
        for version in 0..=u8::MAX {
            for kind in 0..=u8::MAX {
                let frame = [version, kind, 0, 0, 0];
                match split(&frame, 16) {
                    Ok((k, body)) => {
                        assert_eq!(version, PROTOCOL_VERSION);
                        assert_eq!(k as u8, kind);
                        assert_eq!(body.len(), 3);
                    }
                    Err(WireError::UnsupportedVersion(v)) => assert_eq!(v, version),
                    Err(WireError::UnknownKind(k)) => assert_eq!(k, kind),
                    Err(e) => panic!("unexpected {e:?}"),
                }
            }
        }
    }
}
