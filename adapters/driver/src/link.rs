//! Connection tasks: the dial and accept handshakes, then a link's reader
//! and writer.
//!
//! A connection task never touches the node. It reports to the loop through
//! the bounded input queue (waiting when it is full, which stops reading the
//! socket: backpressure on the peer, not on the node) and asks the loop to
//! decide whether a handshaken connection becomes the peer's link. Its
//! writer drains the peer's frame queue, which the loop fills without ever
//! waiting.

use crate::codec::{
    Ack, FrameDecoder, FrameError, HANDSHAKE_MAX, Hello, PREFIX_LEN, PartialBudget, encode_record, write_record,
};
use crate::handle::Shared;
use crate::joined::ContactFailure;
use crate::oneshot;
use crate::queue::Queue;
use crate::runtime::{Accepting, Duplex, Runtime, Transport};
use crate::sync::Arc;
use futures_lite::future;
use futures_lite::{AsyncWriteExt, FutureExt};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::Duration;

/// Identifies one connection for the life of the node.
pub(crate) type ConnId = u64;

/// A peer's outbound frames.
pub(crate) type FrameQueue = Queue<Vec<u8>>;

/// How the loop asks a link to close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseMode {
    /// Write what is still queued for the peer, then a goodbye record, then
    /// close: the node is leaving, and no other link will take the queue.
    Drain,
    /// A goodbye record, then close, leaving the queue to whichever link
    /// comes next (the link is idle, or replaced by a newer one).
    Goodbye,
    /// Close now.
    Abort,
}

/// How a link ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Closed {
    /// The peer said goodbye: an orderly close.
    Goodbye,
    /// We closed it (goodbye or abort).
    ByUs,
    /// Reset, or ended without goodbye: a failure.
    Broken,
    /// The peer sent bytes that are not a record.
    BadInput,
    /// The record arriving would have taken the node's partial-record
    /// budget over its limit: a failure of the link, not necessarily of the
    /// peer.
    OverBudget,
}

/// Why a dial did not produce a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DialFailure {
    /// The peer's own dial to us wins.
    Duplicate,
    /// The peer is shutting down or full.
    Busy,
    /// Unreachable, timed out, handshake failed, or wrong identity.
    Failed,
}

/// The loop's answer to a handshaken connection.
pub(crate) enum Decision {
    /// It is the peer's link now.
    Accept {
        queue: Arc<FrameQueue>,
        close: oneshot::Receiver<CloseMode>,
    },
    /// Close it, answering the dialer with this.
    Refuse(Ack),
}

/// What connection tasks tell the loop.
pub(crate) enum Input {
    /// A peer dialled us and said hello.
    Inbound {
        conn: ConnId,
        hello: Hello,
        reply: oneshot::Sender<Decision>,
    },
    /// Our dial was accepted by the peer.
    Outbound {
        conn: ConnId,
        peer: SocketAddr,
        incarnation: u64,
        reply: oneshot::Sender<Decision>,
    },
    /// Our dial failed.
    DialFailed {
        conn: ConnId,
        peer: SocketAddr,
        why: DialFailure,
        /// Why, for the join contacts' report; `None` when it is no
        /// failure (a duplicate).
        reason: Option<ContactFailure>,
    },
    /// An inbound connection failed before saying hello.
    HandshakeFailed { conn: ConnId },
    /// A frame arrived on a link.
    Frame {
        conn: ConnId,
        peer: SocketAddr,
        frame: Vec<u8>,
    },
    /// A link ended.
    Closed {
        conn: ConnId,
        peer: SocketAddr,
        how: Closed,
    },
}

/// What every connection task needs; immutable and shared.
pub(crate) struct TaskCtx {
    pub(crate) shared: Arc<Shared>,
    pub(crate) transport: std::sync::Arc<dyn Transport>,
    pub(crate) runtime: std::sync::Arc<dyn Runtime>,
    pub(crate) incarnation: u64,
    pub(crate) max_frame: usize,
    /// What partial records may hold across all links.
    pub(crate) partial: std::sync::Arc<PartialBudget>,
    pub(crate) connect_timeout: Duration,
    pub(crate) handshake_timeout: Duration,
    pub(crate) linger: Duration,
    /// A link silent this long is broken; zero turns the check off.
    pub(crate) liveness_timeout: Duration,
}

/// The record a link sends every third of the liveness timeout. A frame starts with its protocol version (1), so a
/// one-byte record of 0 can never be a frame; the reader drops it.
const KEEPALIVE: &[u8] = &[0];

/// Bytes gathered into one write before flushing.
const WRITE_BATCH: usize = 256 * 1024;
/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 64 * 1024;

async fn timeout<T>(runtime: &dyn Runtime, d: Duration, f: impl Future<Output = T>) -> Option<T> {
    let sleep = runtime.sleep(d);
    async { Some(f.await) }
        .or(async {
            sleep.await;
            None
        })
        .await
}

/// Dials `peer`, says hello, and runs the link if the loop keeps it.
pub(crate) async fn dial(ctx: std::sync::Arc<TaskCtx>, conn: ConnId, peer: SocketAddr) {
    // Whether the transport connected (and its handshake, TLS or QUIC,
    // completed): a failure before is the transport's, after it the node
    // handshake's.
    let connected = AtomicBool::new(false);
    let attempt = async {
        let mut duplex = ctx
            .transport
            .connect(peer)
            .await
            .map_err(|e| (ContactFailure::from_io(&e, false), FrameError::Io(e)))?;
        connected.store(true, Ordering::Relaxed);
        let handshake = async {
            write_record(
                &mut duplex.writer,
                &Hello::new(ctx.shared.identity, ctx.incarnation).encode(),
            )
            .await?;
            let mut decoder = FrameDecoder::new(HANDSHAKE_MAX);
            let mut scratch = [0u8; HANDSHAKE_MAX + PREFIX_LEN];
            let ack = decoder
                .read_record(&mut duplex.reader, &mut scratch)
                .await?
                .ok_or(FrameError::Truncated { missing: PREFIX_LEN })?;
            Ok::<_, FrameError>((decoder, Ack::decode(&ack)?))
        };
        match handshake.await {
            Ok((decoder, ack)) => Ok((duplex, decoder, ack)),
            Err(e) => Err((handshake_failure(&e), e)),
        }
    };
    let (duplex, decoder, incarnation) = match timeout(&*ctx.runtime, ctx.connect_timeout, attempt).await {
        Some(Ok((duplex, decoder, Ack::Accept { identity, incarnation }))) if identity == peer => {
            (duplex, decoder, incarnation)
        }
        other => {
            let (why, reason) = match other {
                Some(Ok((_, _, Ack::Duplicate))) => (DialFailure::Duplicate, None),
                Some(Ok((_, _, Ack::Busy))) => {
                    tracing::info!(%peer, "dial refused: the peer is full or shutting down");
                    let reason = ContactFailure::RefusedByPeer("it is full or shutting down".into());
                    (DialFailure::Busy, Some(reason))
                }
                Some(Ok((_, _, Ack::Accept { identity, .. }))) => {
                    tracing::warn!(%peer, answered_as = %identity, "dial failed: another node answers at this address");
                    (DialFailure::Failed, Some(ContactFailure::OtherNode(identity)))
                }
                Some(Err((reason, error))) => {
                    tracing::warn!(%peer, %error, %reason, "dial failed");
                    (DialFailure::Failed, Some(reason))
                }
                None => {
                    let after = ctx.connect_timeout;
                    let reason = if connected.load(Ordering::Relaxed) {
                        ContactFailure::Silent(format!("no handshake answer within the connect timeout ({after:?})"))
                    } else {
                        ContactFailure::Unreachable(format!("no connection within the connect timeout ({after:?})"))
                    };
                    tracing::warn!(%peer, ?after, %reason, "dial failed: no handshake before the connect timeout");
                    (DialFailure::Failed, Some(reason))
                }
            };
            let failed = Input::DialFailed {
                conn,
                peer,
                why,
                reason,
            };
            let _ = ctx.shared.inputs.push(failed).await;
            return;
        }
    };
    let (reply, decision) = oneshot::channel();
    let asked = Input::Outbound {
        conn,
        peer,
        incarnation,
        reply,
    };
    if ctx.shared.inputs.push(asked).await.is_err() {
        return;
    }
    match decision.await {
        Ok(Decision::Accept { queue, close }) => run(&ctx, conn, peer, duplex, decoder, queue, close).await,
        // The loop kept another connection to this peer (or is stopping):
        // close this one in an orderly way.
        Ok(Decision::Refuse(_)) => goodbye(&ctx, duplex).await,
        Err(oneshot::Canceled) => {}
    }
}

/// Why the node handshake after a connected transport failed with `error`.
fn handshake_failure(error: &FrameError) -> ContactFailure {
    match error {
        FrameError::Io(e) => ContactFailure::from_io(e, true),
        // The first bytes of a TLS record (22: handshake, 21: alert; then
        // version 3.x) read as a length prefix.
        FrameError::TooLarge { len, .. } if matches!(len >> 16, 0x1603 | 0x1503) => {
            ContactFailure::WrongTransport("it answered in TLS, and this node dials in plaintext".into())
        }
        FrameError::Truncated { .. } => {
            ContactFailure::HungUp("it closed the connection before answering the handshake".into())
        }
        // Handshakes are not charged to the budget; kept for completeness.
        FrameError::OverBudget { .. } => ContactFailure::HungUp(format!("{error}")),
        FrameError::TooLarge { .. } | FrameError::Handshake(_) => {
            ContactFailure::WrongTransport(format!("its answer is not a node handshake ({error})"))
        }
    }
}

/// Completes an inbound connection's handshakes and runs the link if the
/// loop keeps it.
pub(crate) async fn accept(ctx: std::sync::Arc<TaskCtx>, conn: ConnId, accepting: Accepting) {
    let Accepting { remote, handshake } = accepting;
    let attempt = async {
        let mut duplex = handshake.await?;
        let mut decoder = FrameDecoder::new(HANDSHAKE_MAX);
        let mut scratch = [0u8; HANDSHAKE_MAX + PREFIX_LEN];
        let hello = decoder
            .read_record(&mut duplex.reader, &mut scratch)
            .await?
            .ok_or(FrameError::Truncated { missing: PREFIX_LEN })?;
        Ok::<_, FrameError>((duplex, decoder, Hello::decode(&hello)?))
    };
    let (mut duplex, decoder, hello) = match timeout(&*ctx.runtime, ctx.handshake_timeout, attempt).await {
        Some(Ok(handshaken)) => handshaken,
        failed => {
            match failed {
                Some(Err(error)) => tracing::warn!(%remote, %error, "inbound connection refused"),
                _ => {
                    let after = ctx.handshake_timeout;
                    tracing::warn!(%remote, ?after, "inbound connection closed: no handshake before the timeout");
                }
            }
            let _ = ctx.shared.inputs.push(Input::HandshakeFailed { conn }).await;
            return;
        }
    };
    let peer = hello.identity;
    let (reply, decision) = oneshot::channel();
    if ctx
        .shared
        .inputs
        .push(Input::Inbound { conn, hello, reply })
        .await
        .is_err()
    {
        return;
    }
    match decision.await {
        Ok(Decision::Accept { queue, close }) => {
            let ack = Ack::Accept {
                identity: ctx.shared.identity,
                incarnation: ctx.incarnation,
            };
            let sent = timeout(
                &*ctx.runtime,
                ctx.handshake_timeout,
                write_record(&mut duplex.writer, &ack.encode()),
            )
            .await;
            if matches!(sent, Some(Ok(()))) {
                run(&ctx, conn, peer, duplex, decoder, queue, close).await;
            } else {
                let how = Closed::Broken;
                let _ = ctx.shared.inputs.push(Input::Closed { conn, peer, how }).await;
            }
        }
        Ok(Decision::Refuse(ack)) => {
            let answer = async {
                let _ = write_record(&mut duplex.writer, &ack.encode()).await;
                let _ = duplex.writer.close().await;
            };
            let _ = timeout(&*ctx.runtime, ctx.handshake_timeout, answer).await;
        }
        Err(oneshot::Canceled) => {}
    }
}

/// Closes a connection that never became a link: a goodbye record, then an
/// orderly close.
async fn goodbye(ctx: &TaskCtx, mut duplex: Duplex) {
    let bye = async {
        let _ = write_record(&mut duplex.writer, &[]).await;
        let _ = duplex.writer.close().await;
    };
    let _ = timeout(&*ctx.runtime, ctx.linger, bye).await;
}

/// Runs an open link until it ends, then reports how.
async fn run(
    ctx: &TaskCtx,
    conn: ConnId,
    peer: SocketAddr,
    duplex: Duplex,
    mut decoder: FrameDecoder,
    queue: Arc<FrameQueue>,
    mut close: oneshot::Receiver<CloseMode>,
) {
    let Duplex { mut reader, mut writer } = duplex;
    decoder.set_max(ctx.max_frame);
    let budgeted = decoder.set_budget(ctx.partial.clone());
    let read = async {
        if let Err(error) = budgeted {
            tracing::warn!(%peer, %error, "closing the link: the partial-record budget is full");
            return Closed::OverBudget;
        }
        let mut scratch = vec![0u8; READ_CHUNK];
        let silence = ctx.liveness_timeout;
        loop {
            let record = if silence.is_zero() {
                decoder.read_record(&mut reader, &mut scratch).await
            } else {
                match timeout(&*ctx.runtime, silence, decoder.read_record(&mut reader, &mut scratch)).await {
                    Some(record) => record,
                    None => {
                        // Its keepalives stopped too: a hung process, or a
                        // host whose kernel still answers TCP keepalives.
                        tracing::warn!(%peer, ?silence, "link silent for the liveness timeout: reporting the peer down");
                        return Closed::Broken;
                    }
                }
            };
            match record {
                Ok(Some(frame)) if frame.is_empty() => return Closed::Goodbye,
                Ok(Some(frame)) if frame == KEEPALIVE => {}
                Ok(Some(frame)) => {
                    if ctx
                        .shared
                        .inputs
                        .push(Input::Frame { conn, peer, frame })
                        .await
                        .is_err()
                    {
                        return Closed::ByUs;
                    }
                }
                Ok(None) => return Closed::Broken,
                Err(FrameError::Io(error)) => {
                    tracing::debug!(%peer, %error, "link broken");
                    return Closed::Broken;
                }
                Err(error @ FrameError::OverBudget { .. }) => {
                    tracing::warn!(%peer, %error, "closing the link: the partial-record budget is full");
                    return Closed::OverBudget;
                }
                Err(error) => {
                    tracing::warn!(%peer, %error, "closing the link: bad input");
                    return Closed::BadInput;
                }
            }
        }
    };
    let write = async {
        let mut buf = Vec::new();
        let keepalive_every = ctx.liveness_timeout / 3;
        // One timer, renewed only when it fires (not per write batch): a
        // keepalive every third of the timeout, busy link or not, costs one
        // 5-byte record and no timer on the hot path.
        let mut tick = (!keepalive_every.is_zero()).then(|| ctx.runtime.sleep(keepalive_every));
        loop {
            let next = future::poll_fn(|cx| {
                if let Poll::Ready(mode) = std::pin::Pin::new(&mut close).poll(cx) {
                    return Poll::Ready(Err(mode.unwrap_or(CloseMode::Abort)));
                }
                if let Poll::Ready(frame) = queue.poll_pop(cx) {
                    return Poll::Ready(Ok(frame));
                }
                match tick.as_mut().map(|t| t.as_mut().poll(cx)) {
                    // Tell the peer we live, and start the next period.
                    Some(Poll::Ready(())) => {
                        tick = Some(ctx.runtime.sleep(keepalive_every));
                        Poll::Ready(Ok(Some(KEEPALIVE.to_vec())))
                    }
                    _ => Poll::Pending,
                }
            })
            .await;
            let first = match next {
                Ok(Some(frame)) => frame,
                Ok(None) | Err(CloseMode::Drain | CloseMode::Goodbye) => {
                    // Orderly close: (what is queued, when draining, then)
                    // goodbye.
                    buf.clear();
                    if matches!(next, Err(CloseMode::Drain)) {
                        while let Some(frame) = queue.try_pop() {
                            encode_record(&frame, &mut buf);
                        }
                    }
                    encode_record(&[], &mut buf);
                    let _ = writer.write_all(&buf).await;
                    let _ = writer.flush().await;
                    let _ = writer.close().await;
                    return (Closed::ByUs, true);
                }
                Err(CloseMode::Abort) => return (Closed::ByUs, false),
            };
            buf.clear();
            encode_record(&first, &mut buf);
            while buf.len() < WRITE_BATCH {
                match queue.try_pop() {
                    Some(frame) => encode_record(&frame, &mut buf),
                    None => break,
                }
            }
            if writer.write_all(&buf).await.is_err() || writer.flush().await.is_err() {
                return (Closed::Broken, false);
            }
        }
    };
    let mut read = pin!(read);
    let write = pin!(write);
    let how = async { (read.as_mut().await, false) }.or(write).await;
    let how = match how {
        (how, true) => {
            // After our goodbye, keep reading until the peer closes too (or
            // the linger runs out), so that closing with unread bytes does
            // not reset the connection under the goodbye.
            let _ = timeout(&*ctx.runtime, ctx.linger, read).await;
            how
        }
        (how, false) => how,
    };
    let _ = ctx.shared.inputs.push(Input::Closed { conn, peer, how }).await;
}
