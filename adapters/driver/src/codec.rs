//! Framing on a byte stream, and the handshake that opens every link.
//!
//! # Records
//!
//! A link (a TCP connection, or one bidirectional QUIC stream) carries
//! records:
//!
//! ```text
//! +----------------+------------------------------+
//! | length: u32 BE |  length bytes                |
//! +----------------+------------------------------+
//! ```
//!
//! The length is compared with the maximum frame size (the node's
//! `max_frame`, [`DEFAULT_MAX_FRAME`](epidemic_core::wire::DEFAULT_MAX_FRAME)
//! unless configured) through [`check_len`] **before** any buffer is reserved
//! for the body, so a prefix of 4 GiB costs the receiver four bytes of
//! reading and a closed link, not an allocation.
//!
//! - A record of length 0 is **goodbye**: the sender closes the link in an
//!   orderly way (idle, or leaving) and the receiver must not take the close
//!   for a failure. An empty body is never a valid node frame (it has no
//!   header), so the two cannot be confused.
//! - Every other record is one node frame (`epidemic_core::wire`), handed to
//!   `Node::handle_frame` as is.
//!
//! # Handshake
//!
//! The first record each way is a handshake, postcard-encoded and at most
//! [`HANDSHAKE_MAX`] bytes: the dialer sends [`Hello`], the acceptor answers
//! [`Ack`]. `Hello` names the dialer's identity (its listen address) and its
//! incarnation, a random number drawn at every start, so that a peer that
//! restarted on the same address is told apart from the old one. The
//! acceptor answers [`Ack::Accept`] with its own identity and incarnation, or
//! [`Ack::Duplicate`] when the two nodes dialled each other at once and the
//! other connection wins (see the crate docs, "One connection per peer").

use epidemic_core::wire::{PROTOCOL_VERSION, WireError, check_len};
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use serde::{Deserialize, Serialize};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes of the length prefix.
pub const PREFIX_LEN: usize = 4;

/// The largest handshake record accepted.
pub const HANDSHAKE_MAX: usize = 256;

/// The handshake's magic: "EPDM".
pub const MAGIC: [u8; 4] = *b"EPDM";

/// Why a link's byte stream was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// A length prefix over the maximum: nothing was allocated for it.
    #[error("record of {len} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// The announced length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// The stream ended inside a record.
    #[error("stream ended {missing} bytes short of a record")]
    Truncated {
        /// Bytes still missing.
        missing: usize,
    },
    /// The handshake record is not a valid [`Hello`] or [`Ack`].
    #[error("bad handshake: {0}")]
    Handshake(&'static str),
    /// Growing this link's partial record would take the node's
    /// [`PartialBudget`] over its limit: what partial records hold across
    /// all links is full, so this link is closed rather than the node's
    /// memory grown. Not necessarily the peer's fault.
    #[error(
        "partial records across all links hold {held} bytes, and this one would take them over the budget of {limit}"
    )]
    OverBudget {
        /// Bytes charged to the budget before this growth.
        held: usize,
        /// The budget.
        limit: usize,
    },
    /// The transport failed.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
}

/// The 4-byte prefix of a record of `len` bytes; `None` if `len` does not fit.
pub fn prefix(len: usize) -> Option<[u8; PREFIX_LEN]> {
    u32::try_from(len).ok().map(u32::to_be_bytes)
}

/// Appends one record holding `body` to `out`.
///
/// # Panics
///
/// If `body` is 4 GiB or longer, which no frame under any maximum the
/// decoder accepts can be.
pub fn encode_record(body: &[u8], out: &mut Vec<u8>) {
    let p = prefix(body.len()).expect("records are shorter than 4 GiB");
    out.extend_from_slice(&p);
    out.extend_from_slice(body);
}

/// The buffer capacity a decoder keeps between records: a large record's
/// buffer is released once it has been taken, so a burst of large frames
/// (or a peer that announced one and left) does not pin a frame's worth of
/// memory per link for the link's life.
pub const RETAINED_CAPACITY: usize = 64 * 1024;

/// The bytes all of a node's links may hold in partial records, beyond
/// each link's free [`RETAINED_CAPACITY`].
///
/// Each link's decoder charges its buffer's capacity above the free
/// allowance here before growing it, and gives it back when a record is
/// taken (or the link ends). A growth that would pass the limit fails with
/// [`FrameError::OverBudget`] and the link closes, so links that each
/// announce a large record and stall pin at most this much in all (plus
/// the free allowance per link), not `links × max_frame`.
#[derive(Debug)]
pub struct PartialBudget {
    limit: usize,
    held: AtomicUsize,
}

impl PartialBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        PartialBudget {
            limit,
            held: AtomicUsize::new(0),
        }
    }

    /// The limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes charged now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// Moves a charge from `from` to `to` bytes; an increase past the limit
    /// is refused and changes nothing.
    fn recharge(&self, from: usize, to: usize) -> Result<(), FrameError> {
        if to <= from {
            self.held.fetch_sub(from - to, Ordering::Relaxed);
            return Ok(());
        }
        let more = to - from;
        self.held
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| {
                held.checked_add(more).filter(|&h| h <= self.limit)
            })
            .map(drop)
            .map_err(|held| FrameError::OverBudget {
                held,
                limit: self.limit,
            })
    }
}

/// Incremental, sans-IO decoder of records.
///
/// Feed it bytes as they arrive with [`FrameDecoder::extend`], then take
/// whole records with [`FrameDecoder::next_record`]. The buffer it keeps is
/// bounded by the maximum record plus one read, and, once given a
/// [`PartialBudget`], what it holds above [`RETAINED_CAPACITY`] is charged
/// to that budget.
#[derive(Debug)]
pub struct FrameDecoder {
    max: usize,
    buf: Vec<u8>,
    start: usize,
    budget: Option<Arc<PartialBudget>>,
    /// What this decoder has charged to `budget`.
    charged: usize,
}

impl FrameDecoder {
    /// A decoder refusing records longer than `max` bytes.
    pub fn new(max: usize) -> Self {
        FrameDecoder {
            max,
            buf: Vec::new(),
            start: 0,
            budget: None,
            charged: 0,
        }
    }

    /// Charges this decoder's buffer above [`RETAINED_CAPACITY`] to
    /// `budget` from now on.
    pub fn set_budget(&mut self, budget: Arc<PartialBudget>) -> Result<(), FrameError> {
        self.release();
        self.budget = Some(budget);
        self.charge(self.buf.capacity())
    }

    /// Charges the budget (if any) for a buffer of `capacity` bytes.
    fn charge(&mut self, capacity: usize) -> Result<(), FrameError> {
        let Some(budget) = &self.budget else {
            return Ok(());
        };
        let to = capacity.saturating_sub(RETAINED_CAPACITY);
        budget.recharge(self.charged, to)?;
        self.charged = to;
        Ok(())
    }

    fn release(&mut self) {
        if let Some(budget) = &self.budget {
            let _ = budget.recharge(self.charged, 0);
        }
        self.charged = 0;
    }

    /// Where the record under way ends in `buf`, once its prefix has
    /// arrived and is within the maximum.
    fn record_end(&self) -> Option<usize> {
        let head = self.buf[self.start..].first_chunk::<PREFIX_LEN>()?;
        let len = usize::try_from(u32::from_be_bytes(*head)).ok()?;
        (len <= self.max).then(|| self.start + PREFIX_LEN + len)
    }

    /// The maximum record length.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Changes the maximum (the handshake's is smaller than the frames').
    pub fn set_max(&mut self, max: usize) {
        self.max = max;
    }

    /// Bytes received but not yet returned as records.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Appends received bytes.
    ///
    /// The buffer grows by doubling, but never past the end of the record
    /// under way when that is known (so a 1 MiB record takes 1 MiB, not the
    /// next power of two), and only after the growth is charged to the
    /// budget: [`FrameError::OverBudget`] leaves the decoder as it was.
    pub fn extend(&mut self, bytes: &[u8]) -> Result<(), FrameError> {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        let need = self.buf.len() + bytes.len();
        if need > self.buf.capacity() {
            let doubled = need.max(2 * self.buf.capacity());
            let target = match self.record_end() {
                Some(end) if end >= need => doubled.min(end),
                _ => doubled,
            };
            self.charge(target)?;
            self.buf.reserve_exact(target - self.buf.len());
        }
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    /// The next whole record, `Ok(None)` if more bytes are needed, or an error
    /// for a prefix over the maximum (checked before anything is reserved).
    pub fn next_record(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        let avail = &self.buf[self.start..];
        let Some(head) = avail.first_chunk::<PREFIX_LEN>() else {
            return Ok(None);
        };
        // On 16-bit targets a u32 may not fit a usize; saturate so the check
        // below refuses it.
        let len = usize::try_from(u32::from_be_bytes(*head)).unwrap_or(usize::MAX);
        check_len(len, self.max).map_err(|e| match e {
            WireError::TooLarge { len, max } => FrameError::TooLarge { len, max },
            _ => FrameError::TooLarge { len, max: self.max },
        })?;
        if avail.len() < PREFIX_LEN + len {
            // Nothing is reserved for the announced body: the buffer grows
            // as it arrives, so a peer that announces a large record and
            // stalls pins what it sent, not what it announced.
            return Ok(None);
        }
        let body = avail[PREFIX_LEN..PREFIX_LEN + len].to_vec();
        self.start += PREFIX_LEN + len;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        if self.buf.capacity() > RETAINED_CAPACITY {
            self.buf.shrink_to(RETAINED_CAPACITY.max(self.buf.len()));
            // Never more than what was charged: a shrink cannot fail.
            let _ = self.charge(self.buf.capacity());
        }
        Ok(Some(body))
    }

    /// Reads from `reader` until a whole record is decoded. `Ok(None)` at a
    /// clean end of stream between records; [`FrameError::Truncated`] if the
    /// stream ends inside one.
    pub async fn read_record<R: AsyncRead + Unpin + ?Sized>(
        &mut self,
        reader: &mut R,
        scratch: &mut [u8],
    ) -> Result<Option<Vec<u8>>, FrameError> {
        loop {
            if let Some(record) = self.next_record()? {
                return Ok(Some(record));
            }
            let n = reader.read(scratch).await?;
            if n == 0 {
                return match self.buffered() {
                    0 => Ok(None),
                    have => {
                        let need = match self.buf[self.start..].first_chunk::<PREFIX_LEN>() {
                            Some(h) => PREFIX_LEN + u32::from_be_bytes(*h) as usize,
                            None => PREFIX_LEN,
                        };
                        Err(FrameError::Truncated {
                            missing: need.saturating_sub(have),
                        })
                    }
                };
            }
            self.extend(&scratch[..n])?;
        }
    }
}

impl Drop for FrameDecoder {
    fn drop(&mut self) {
        self.release();
    }
}

/// Writes one record and flushes.
pub async fn write_record<W: AsyncWrite + Unpin + ?Sized>(writer: &mut W, body: &[u8]) -> io::Result<()> {
    let mut out = Vec::with_capacity(PREFIX_LEN + body.len());
    encode_record(body, &mut out);
    writer.write_all(&out).await?;
    writer.flush().await
}

/// The dialer's first record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Hello {
    /// [`MAGIC`].
    pub magic: [u8; 4],
    /// The node protocol version the dialer speaks
    /// ([`PROTOCOL_VERSION`]).
    pub protocol: u8,
    /// The dialer's identity: the address it listens on.
    pub identity: SocketAddr,
    /// Random per start of the dialer.
    pub incarnation: u64,
}

impl Hello {
    /// A hello from `identity` at `incarnation`, speaking this build's
    /// protocol version.
    pub fn new(identity: SocketAddr, incarnation: u64) -> Self {
        Hello {
            magic: MAGIC,
            protocol: PROTOCOL_VERSION,
            identity,
            incarnation,
        }
    }

    /// The record body.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("a hello always serializes")
    }

    /// Parses and checks a record body.
    pub fn decode(body: &[u8]) -> Result<Self, FrameError> {
        let hello: Hello = decode_exact(body)?;
        if hello.magic != MAGIC {
            return Err(FrameError::Handshake("wrong magic"));
        }
        if hello.protocol != PROTOCOL_VERSION {
            return Err(FrameError::Handshake("unsupported protocol version"));
        }
        Ok(hello)
    }
}

/// The acceptor's answer to a [`Hello`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Ack {
    /// The link is open.
    Accept {
        /// The acceptor's identity.
        identity: SocketAddr,
        /// The acceptor's incarnation.
        incarnation: u64,
    },
    /// The two nodes dialled each other at once and the acceptor's own dial
    /// wins; this connection closes. Not a failure.
    Duplicate,
    /// Refused: the acceptor is shutting down or full. Not a failure of the
    /// peer; the dialer may retry later.
    Busy,
}

impl Ack {
    /// The record body.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("an ack always serializes")
    }

    /// Parses a record body.
    pub fn decode(body: &[u8]) -> Result<Self, FrameError> {
        decode_exact(body)
    }
}

fn decode_exact<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    match postcard::take_from_bytes::<T>(body) {
        Ok((v, [])) => Ok(v),
        Ok(_) => Err(FrameError::Handshake("trailing bytes")),
        Err(_) => Err(FrameError::Handshake("malformed")),
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_large_record_s_buffer_is_released_once_taken() {
        let mut d = FrameDecoder::new(2 << 20);
        let mut wire = Vec::new();
        encode_record(&vec![7u8; 1 << 20], &mut wire);
        encode_record(b"small", &mut wire);
        for chunk in wire.chunks(64 * 1024) {
            d.extend(chunk).unwrap();
        }
        assert_eq!(d.next_record().unwrap().map(|r| r.len()), Some(1 << 20));
        assert!(d.buf.capacity() <= RETAINED_CAPACITY, "kept {} bytes", d.buf.capacity());
        assert_eq!(d.next_record().unwrap().as_deref(), Some(&b"small"[..]));
        assert!(d.buf.capacity() <= RETAINED_CAPACITY);
    }
    /// A peer that announces a large record and sends little of it pins
    /// only what it sent (plus one read), not the announced length: 250
    /// links each announcing 1 MiB and stalling once pinned 250 MiB.
    #[test]
    fn an_announced_record_reserves_only_what_arrived() {
        let mut d = FrameDecoder::new(1 << 20);
        let mut wire = Vec::new();
        encode_record(&vec![7u8; 1 << 20], &mut wire);
        d.extend(&wire[..100]).unwrap();
        assert_eq!(d.next_record().unwrap(), None);
        assert!(
            d.buf.capacity() <= 2 * RETAINED_CAPACITY,
            "reserved {} bytes",
            d.buf.capacity()
        );
        for chunk in wire[100..].chunks(64 * 1024) {
            d.extend(chunk).unwrap();
            let _ = d.next_record().unwrap();
        }
        assert_eq!(d.buffered(), 0, "the whole record was taken");
    }

    /// Decoders sharing a budget: a second link's record is refused once the
    /// first holds the budget, the refusal leaves the second decoder as it
    /// was, and the charge comes back when the first record is taken or its
    /// decoder dropped.
    #[test]
    fn links_share_one_partial_budget() {
        let budget = Arc::new(PartialBudget::new(1 << 20));
        let mut wire = Vec::new();
        encode_record(&vec![7u8; 1 << 20], &mut wire);
        let (head, tail) = wire.split_at(wire.len() - 1);
        let mut first = FrameDecoder::new(1 << 20);
        first.set_budget(budget.clone()).unwrap();
        for chunk in head.chunks(64 * 1024) {
            first.extend(chunk).unwrap();
        }
        assert_eq!(first.next_record().unwrap(), None);
        // The buffer grew to the record's end, not the next power of two.
        assert_eq!(first.buf.capacity(), wire.len());
        assert_eq!(budget.held(), wire.len() - RETAINED_CAPACITY);

        let mut second = FrameDecoder::new(1 << 20);
        second.set_budget(budget.clone()).unwrap();
        let mut fed = 0;
        let refused = head.chunks(64 * 1024).find_map(|chunk| {
            let r = second.extend(chunk).err();
            fed += usize::from(r.is_none()) * chunk.len();
            r
        });
        assert!(
            matches!(refused, Some(FrameError::OverBudget { limit, .. }) if limit == 1 << 20),
            "{refused:?}"
        );
        assert_eq!(second.buffered(), fed, "a refused growth keeps nothing");
        assert!(budget.held() <= budget.limit());

        first.extend(tail).unwrap();
        assert_eq!(first.next_record().unwrap().map(|r| r.len()), Some(1 << 20));
        let after_take = budget.held();
        drop(second);
        assert_eq!(after_take, 0, "taking the record gave its charge back");
        assert_eq!(budget.held(), 0);
        let mut third = FrameDecoder::new(1 << 20);
        third.set_budget(budget.clone()).unwrap();
        for chunk in head.chunks(64 * 1024) {
            third.extend(chunk).unwrap();
        }
        drop(third);
        assert_eq!(budget.held(), 0, "a dropped decoder gives its charge back");
    }

    use futures_lite::future;

    #[test]
    fn records_split_anywhere_reassemble() {
        let mut wire = Vec::new();
        encode_record(b"hello", &mut wire);
        encode_record(b"", &mut wire);
        encode_record(&[7u8; 300], &mut wire);
        for cut in 0..wire.len() {
            let mut d = FrameDecoder::new(1000);
            let mut out = Vec::new();
            d.extend(&wire[..cut]).unwrap();
            while let Some(r) = d.next_record().unwrap() {
                out.push(r);
            }
            d.extend(&wire[cut..]).unwrap();
            while let Some(r) = d.next_record().unwrap() {
                out.push(r);
            }
            assert_eq!(out, vec![b"hello".to_vec(), Vec::new(), vec![7u8; 300]], "cut at {cut}");
            assert_eq!(d.buffered(), 0);
        }
    }

    #[test]
    fn oversized_prefix_is_refused_before_allocation() {
        let mut d = FrameDecoder::new(1 << 20);
        d.extend(&[0xff, 0xff, 0xff, 0xff]).unwrap();
        assert!(matches!(
            d.next_record(),
            Err(FrameError::TooLarge {
                len: 0xffff_ffff,
                max: 0x10_0000
            })
        ));
        assert!(d.buf.capacity() < 1024, "nothing reserved for the announced body");
    }

    #[test]
    fn truncated_stream_is_an_error_and_clean_end_is_not() {
        let mut wire = Vec::new();
        encode_record(&[1u8; 100], &mut wire);
        let mut scratch = [0u8; 16];
        let mut d = FrameDecoder::new(1000);
        let mut r = &wire[..50];
        let e = future::block_on(d.read_record(&mut r, &mut scratch)).unwrap_err();
        assert!(matches!(e, FrameError::Truncated { missing: 54 }), "{e:?}");
        let mut d = FrameDecoder::new(1000);
        let mut r = &wire[..];
        assert_eq!(
            future::block_on(d.read_record(&mut r, &mut scratch)).unwrap(),
            Some(vec![1u8; 100])
        );
        assert_eq!(future::block_on(d.read_record(&mut r, &mut scratch)).unwrap(), None);
    }

    #[test]
    fn handshake_round_trips_and_checks() {
        let addr: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let hello = Hello::new(addr, 42);
        let body = hello.encode();
        assert!(body.len() <= HANDSHAKE_MAX);
        assert_eq!(Hello::decode(&body).unwrap(), hello);
        let mut bad = hello.clone();
        bad.protocol = PROTOCOL_VERSION.wrapping_add(1);
        assert!(Hello::decode(&bad.encode()).is_err());
        assert!(Hello::decode(b"garbage!").is_err());
        let ack = Ack::Accept {
            identity: addr,
            incarnation: 7,
        };
        assert_eq!(Ack::decode(&ack.encode()).unwrap(), ack);
        assert!(Ack::decode(&[9, 9, 9]).is_err());
    }
}
