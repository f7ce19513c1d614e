//! The thread-safe handle to a running node, and its event stream.

use crate::driver::Command;
use crate::link::Input;
use crate::oneshot;
use crate::queue::Queue;
use crate::stats::NodeStats;
use crate::store::Durable;
use crate::streams::{Change, Delivery, Events, MembershipEvent, Subscribers};
use crate::sync::{Arc, Mutex};
use bytes::Bytes;
use epidemic_core::Instant;
use epidemic_core::broadcast::BroadcastError;
use epidemic_core::crdt::Merge;
use epidemic_core::hashtree::Digest;
use epidemic_core::metadata::Merger;
use epidemic_core::metadata::{self, Actor};
use epidemic_core::metadata::{FullPrefix, Persist, PutError, Read};
use epidemic_core::node::typed::{self, Typed, TypedError, TypedRead};
use epidemic_core::node::{BroadcastId, ChannelConfig, ChannelError, ChannelHandler, ChannelId, Node};
use futures_lite::future;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;
use std::net::SocketAddr;

/// Why a handle's request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The node has shut down (or its runtime was dropped); nothing was done.
    #[error("the node has shut down")]
    Shutdown,
    /// The node refused the broadcast; nothing was sent.
    #[error(transparent)]
    Broadcast(#[from] BroadcastError),
    /// The node refused the write (a key or value over the limits);
    /// nothing changed.
    #[error(transparent)]
    Put(#[from] PutError),
    /// The store failed before the write was durable; the node stopped.
    #[error("storage failed: {0}")]
    Storage(String),
    /// A mesh operation ([`Handle::add_member`], [`Handle::remove_member`])
    /// on a node that runs HyParView, whose membership is not
    /// operator-controlled; nothing was done.
    #[error("the node does not run the mesh membership")]
    NotMesh,
    /// A typed value could not be encoded, or a stored value is not of the
    /// type asked for (see [`TypedError`]); nothing was written. A refused
    /// typed write is [`Error::Put`].
    #[error(transparent)]
    Typed(TypedError),
    /// The mesh refused the new member: its member set is full
    /// (`max_members`); nothing was done.
    #[error("the mesh member set is full")]
    MembersFull,
    /// The node refused a channel call (an unknown or duplicate channel,
    /// too many channels, a message too large); nothing was done.
    #[error(transparent)]
    Channel(#[from] ChannelError),
}

/// Data a [`Handle`] takes as a key or a value: owned or borrowed bytes or
/// text (`&str`, `String`, `&[u8]`, `&[u8; N]`, `Vec<u8>`, `Bytes`, and
/// references to them). Owned `Bytes`, `Vec<u8>` and `String` move in
/// without a copy; borrowed data is copied once.
pub trait IntoBytes {
    /// The bytes, owned.
    fn into_bytes(self) -> Bytes;
}

impl IntoBytes for Bytes {
    fn into_bytes(self) -> Bytes {
        self
    }
}

impl IntoBytes for &Bytes {
    fn into_bytes(self) -> Bytes {
        self.clone()
    }
}

impl IntoBytes for Vec<u8> {
    fn into_bytes(self) -> Bytes {
        Bytes::from(self)
    }
}

impl IntoBytes for &Vec<u8> {
    fn into_bytes(self) -> Bytes {
        Bytes::copy_from_slice(self)
    }
}

impl IntoBytes for String {
    fn into_bytes(self) -> Bytes {
        Bytes::from(self)
    }
}

impl IntoBytes for &String {
    fn into_bytes(self) -> Bytes {
        Bytes::copy_from_slice(self.as_bytes())
    }
}

impl IntoBytes for &str {
    fn into_bytes(self) -> Bytes {
        Bytes::copy_from_slice(self.as_bytes())
    }
}

impl IntoBytes for &[u8] {
    fn into_bytes(self) -> Bytes {
        Bytes::copy_from_slice(self)
    }
}

impl<const N: usize> IntoBytes for &[u8; N] {
    fn into_bytes(self) -> Bytes {
        Bytes::copy_from_slice(self)
    }
}

impl From<TypedError> for Error {
    fn from(e: TypedError) -> Self {
        match e {
            TypedError::Put(e) => Error::Put(e),
            e => Error::Typed(e),
        }
    }
}

/// Everything the loop shares with handles and connection tasks.
pub(crate) struct Shared {
    pub(crate) identity: SocketAddr,
    pub(crate) commands: Queue<Command>,
    pub(crate) inputs: Queue<Input>,
    /// Records for the store's writer thread.
    pub(crate) persist: Queue<Persist>,
    /// The writer thread's reports.
    pub(crate) durable: Queue<Durable>,
    pub(crate) subscribers: Mutex<Subscribers>,
    /// Parts still running (the loop, and the writer thread if any); the
    /// last to end closes `stopped`.
    running: Mutex<usize>,
    stopped: Queue<()>,
}

impl Shared {
    pub(crate) fn new(identity: SocketAddr, commands: usize, inputs: usize, event_queue: usize) -> Self {
        Shared {
            identity,
            commands: Queue::new(commands),
            inputs: Queue::new(inputs),
            // Records are whole objects (at most a frame each); 64 MiB or
            // 64 Ki records in flight to the disk, whichever comes first.
            persist: Queue::weighted(1 << 16, 64 << 20, |p: &Persist| {
                p.object.as_ref().map_or(0, Bytes::len) + p.key.len()
            }),
            durable: Queue::new(1 << 16),
            running: Mutex::new(1),
            stopped: Queue::new(1),
            subscribers: Mutex::new(Subscribers::new(event_queue)),
        }
    }

    /// Stops everything that waits on the loop: commands and inputs are
    /// refused from now on, and the ones still queued are dropped (their
    /// reply senders with them, which resolves every waiting request), and
    /// every event stream ends after the events it already holds.
    pub(crate) fn close(&self) {
        drop(self.commands.close_and_drain());
        drop(self.inputs.close_and_drain());
        // The writer thread writes what is queued, then ends.
        self.persist.close();
        self.durable.close();
        self.subscribers.lock().close();
    }
}

impl Shared {
    /// One more part runs (the writer thread).
    pub(crate) fn part_started(&self) {
        *self.running.lock() += 1;
    }

    /// A part ended; the last one marks the node stopped.
    pub(crate) fn part_ended(&self) {
        let last = {
            let mut n = self.running.lock();
            *n = n.saturating_sub(1);
            *n == 0
        };
        if last {
            self.stopped.close();
        }
    }
}

/// A handle to a running node, cheap to clone and usable from any thread or
/// task, on any runtime (it needs none: requests are plain futures that the
/// driver's loop completes).
///
/// Every request goes through the node's bounded command queue. A request
/// waits while that queue is full: backpressure lands on the caller, never on
/// the node's loop. Once the node has shut down, every request returns
/// [`Error::Shutdown`].
///
/// From synchronous code, drive a request with any `block_on`, for instance
/// `futures_lite::future::block_on(handle.broadcast(payload))`.
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("identity", &self.shared.identity)
            .field("running", &self.is_running())
            .finish()
    }
}

impl Handle {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Handle { shared }
    }

    /// The node's identity: the address peers dial.
    pub fn identity(&self) -> SocketAddr {
        self.shared.identity
    }

    /// Whether the node is still running.
    pub fn is_running(&self) -> bool {
        !self.shared.commands.is_closed()
    }

    pub(crate) async fn request<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, Error> {
        let (tx, rx) = oneshot::channel();
        self.shared.commands.push(make(tx)).await.map_err(|_| Error::Shutdown)?;
        rx.await.map_err(|_| Error::Shutdown)
    }

    /// Broadcasts `payload` to every node. Resolves once the node has taken
    /// it (not once peers have it). A payload over the configured limit is
    /// refused with [`Error::Broadcast`].
    pub async fn broadcast(&self, payload: impl IntoBytes) -> Result<BroadcastId<SocketAddr>, Error> {
        let payload = payload.into_bytes();
        Ok(self.request(|reply| Command::Broadcast { payload, reply }).await??)
    }

    /// Joins the cluster through `contacts` (tried in order until one
    /// answers).
    pub async fn join(&self, contacts: impl IntoIterator<Item = SocketAddr>) -> Result<(), Error> {
        let contacts = contacts.into_iter().collect();
        self.request(|reply| Command::Join { contacts, reply }).await
    }

    /// Leaves the overlay (neighbours are told) but keeps running; join
    /// again to come back. See [`Handle::shutdown`] to stop.
    pub async fn leave(&self) -> Result<(), Error> {
        self.request(|reply| Command::Leave { reply }).await
    }

    /// Runs `f` on the node, on the driver's loop, and returns its result:
    /// the way to read anything the node exposes.
    pub async fn inspect<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Node<SocketAddr>) -> T + Send + 'static,
    ) -> Result<T, Error> {
        self.request(|reply| {
            Command::Inspect(Box::new(move |node, _| {
                let _ = reply.send(f(node));
            }))
        })
        .await
    }

    /// Runs `f` on the node, on the driver's loop, with the loop's clock,
    /// then sends what it produced.
    async fn mutate<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Node<SocketAddr>, Instant) -> T + Send + 'static,
    ) -> Result<T, Error> {
        self.request(|reply| {
            Command::Mutate(Box::new(move |node, now| {
                let _ = reply.send(f(node, now));
            }))
        })
        .await
    }

    /// The members this node knows ([`Node::members`]), itself included:
    /// the whole member set in mesh mode; the overlay neighbours in
    /// HyParView mode, where no node knows every member.
    pub async fn members(&self) -> Result<Vec<SocketAddr>, Error> {
        self.inspect(Node::members).await
    }

    /// Mesh mode: adds `member` to the cluster ([`Node::add_member`]); the
    /// change spreads to every member, and the new member learns at once
    /// that it belongs. Adding a member already there (or the node itself)
    /// changes nothing. [`Error::NotMesh`] under HyParView;
    /// [`Error::MembersFull`] when the member set is at its bound.
    pub async fn add_member(&self, member: SocketAddr) -> Result<(), Error> {
        self.mutate(move |node, now| {
            if !node.is_mesh() {
                return Err(Error::NotMesh);
            }
            node.add_member(now, member);
            if node.is_member(&member) {
                Ok(())
            } else {
                Err(Error::MembersFull)
            }
        })
        .await?
    }

    /// Mesh mode: removes `member` from the cluster
    /// ([`Node::remove_member`]); true if it was a member. [`Error::NotMesh`]
    /// under HyParView.
    pub async fn remove_member(&self, member: SocketAddr) -> Result<bool, Error> {
        self.mutate(move |node, now| {
            if !node.is_mesh() {
                return Err(Error::NotMesh);
            }
            let was = node.is_member(&member);
            node.remove_member(now, member);
            Ok(was)
        })
        .await?
    }

    /// Registers the application's broadcast `handler` on `channel`
    /// ([`Node::register_channel`]): a Plumtree engine of its own whose
    /// store is the handler's, with the anti-entropy exchange every
    /// `config.exchange_interval`. Register it on every node that takes
    /// part. The handler runs on the driver's loop; share its store with the
    /// application (behind a mutex, say) to read it.
    pub async fn register_channel(
        &self,
        channel: ChannelId,
        handler: impl ChannelHandler<SocketAddr> + 'static,
        config: ChannelConfig,
    ) -> Result<(), Error> {
        let handler: Box<dyn ChannelHandler<SocketAddr>> = Box::new(handler);
        Ok(self
            .mutate(move |node, now| node.register_channel(now, channel, handler, config))
            .await??)
    }

    /// Removes `channel` ([`Node::unregister_channel`]); its handler is
    /// dropped on the driver's loop.
    pub async fn unregister_channel(&self, channel: ChannelId) -> Result<(), Error> {
        Ok(self
            .mutate(move |node, _| node.unregister_channel(channel).map(drop))
            .await??)
    }

    /// Spreads message `id` with `payload` on `channel`
    /// ([`Node::broadcast_on`]): the application has applied the write to
    /// its handler's store already. Resolves once the node has taken it.
    pub async fn broadcast_on(
        &self,
        channel: ChannelId,
        id: impl IntoBytes,
        payload: impl IntoBytes,
    ) -> Result<(), Error> {
        let (id, payload) = (id.into_bytes(), payload.into_bytes());
        Ok(self
            .mutate(move |node, now| node.broadcast_on(now, channel, id, payload))
            .await??)
    }

    /// Sends `message` to `to` for its handler on `channel`
    /// ([`Node::send_direct`]); a reply from its
    /// [`ChannelHandler::handle_direct`] comes back to this node's handler.
    pub async fn send_direct(&self, channel: ChannelId, to: SocketAddr, message: impl IntoBytes) -> Result<(), Error> {
        let message = message.into_bytes();
        Ok(self
            .mutate(move |node, now| node.send_direct(now, channel, to, message))
            .await??)
    }

    /// The overlay neighbours ([`Node::active_view`]).
    pub async fn neighbors(&self) -> Result<Vec<SocketAddr>, Error> {
        self.inspect(Node::active_view).await
    }

    /// The node's and the driver's counters.
    pub async fn stats(&self) -> Result<NodeStats, Error> {
        self.request(|reply| {
            Command::Inspect(Box::new(move |node, driver| {
                let _ = reply.send(NodeStats {
                    node: node.stats(),
                    driver: driver.clone(),
                });
            }))
        })
        .await
    }

    /// A new stream of every event from now on: delivered broadcasts,
    /// neighbours coming and going, and changes under subscribed prefixes
    /// (the driver consumes the durability events itself). The streams of
    /// one kind ([`Handle::deliveries`], [`Handle::membership`],
    /// [`Handle::subscribe`]) are usually what an application wants.
    ///
    /// Lag is reported in the stream ([`Lagged`](crate::Lagged)); see [`streams`](crate::streams).
    pub fn events(&self) -> Events {
        self.shared.subscribers.lock().events()
    }

    /// A new stream of the neighbours coming and going, from now on.
    pub fn membership(&self) -> Events<MembershipEvent> {
        self.shared.subscribers.lock().membership()
    }

    /// A new stream of the broadcasts delivered here from now on.
    pub fn deliveries(&self) -> Events<Delivery> {
        self.shared.subscribers.lock().deliveries()
    }

    /// Writes `value` under `key` in `prefix`, and resolves once the write
    /// is durable: on disk when the node has a store (the record written and
    /// fsynced), at once otherwise.
    ///
    /// With `context: None` the write overwrites every sibling this node
    /// holds; with the context of an earlier read ([`Read::context`]) it
    /// overwrites what that read saw, and concurrent writes stay siblings.
    pub async fn put(
        &self,
        prefix: &FullPrefix,
        key: impl IntoBytes,
        value: impl IntoBytes,
        context: Option<metadata::Context<SocketAddr>>,
    ) -> Result<(), Error> {
        let (prefix, key, value) = (prefix.clone(), key.into_bytes(), Some(value.into_bytes()));
        self.request(|reply| Command::Put {
            prefix,
            key,
            value,
            context,
            reply,
        })
        .await?
    }

    /// Deletes `key` (writes a tombstone), like [`Handle::put`].
    pub async fn delete(
        &self,
        prefix: &FullPrefix,
        key: impl IntoBytes,
        context: Option<metadata::Context<SocketAddr>>,
    ) -> Result<(), Error> {
        let (prefix, key) = (prefix.clone(), key.into_bytes());
        self.request(|reply| Command::Put {
            prefix,
            key,
            value: None,
            context,
            reply,
        })
        .await?
    }

    /// Reads `key`: every sibling and the context to write back, or `None`
    /// if the node holds nothing under it. A deleted key reads as a
    /// tombstone ([`Read::is_deleted`]) until its tombstone is collected.
    pub async fn get(
        &self,
        prefix: &FullPrefix,
        key: impl IntoBytes,
    ) -> Result<Option<Read<Actor<SocketAddr>>>, Error> {
        let (prefix, key) = (prefix.clone(), key.into_bytes());
        self.inspect(move |node| node.get(&prefix, &key)).await
    }

    /// Reads `key` resolved to one value: the prefix's CRDT merge if one is
    /// registered ([`Handle::register_crdt`]), last-writer-wins otherwise;
    /// `None` if absent or deleted. Nothing is written back; see
    /// [`Handle::get_resolved_and_repair`].
    pub async fn get_resolved(&self, prefix: &FullPrefix, key: impl IntoBytes) -> Result<Option<Bytes>, Error> {
        let (prefix, key) = (prefix.clone(), key.into_bytes());
        self.inspect(move |node| node.get_resolved(&prefix, &key)).await
    }

    /// Read-repair, as Riak's `get` with a resolver: reads `key` resolved
    /// as [`Handle::get_resolved`] resolves it (the prefix's CRDT merge if
    /// one is registered, last-writer-wins otherwise) and, when the key has
    /// more than one sibling, writes the resolved value back with the
    /// read's context (a tombstone if it resolved to deleted), so the
    /// siblings collapse to one on every node; a write that raced with the
    /// read stays a sibling. Resolves once the write-back is durable, like
    /// [`Handle::put`]. Returns the resolved value; `None` if absent or
    /// deleted.
    pub async fn get_resolved_and_repair(
        &self,
        prefix: &FullPrefix,
        key: impl IntoBytes,
    ) -> Result<Option<Bytes>, Error> {
        let key = key.into_bytes();
        let (p, k) = (prefix.clone(), key.clone());
        let read = self
            .inspect(move |node| {
                let read = node.get(&p, &k)?;
                Some((node.get_resolved(&p, &k), read))
            })
            .await?;
        let Some((resolved, read)) = read else {
            return Ok(None);
        };
        self.repair(prefix, key, resolved, read).await
    }

    /// Read-repair with a resolver of your own: reads `key` and, if it has
    /// several live siblings, resolves them with `resolve` ([`Read::resolve`]:
    /// `None` if deleted, the value itself if there is one); when the key
    /// has more than one sibling, writes the result back with the read's
    /// context, as [`Handle::get_resolved_and_repair`] does. `resolve` runs
    /// on the caller's task.
    pub async fn resolve_and_repair(
        &self,
        prefix: &FullPrefix,
        key: impl IntoBytes,
        resolve: impl FnOnce(&[Bytes]) -> Bytes,
    ) -> Result<Option<Bytes>, Error> {
        let key = key.into_bytes();
        let Some(read) = self.get(prefix, key.clone()).await? else {
            return Ok(None);
        };
        let resolved = read.resolve(resolve);
        self.repair(prefix, key, resolved, read).await
    }

    async fn repair(
        &self,
        prefix: &FullPrefix,
        key: Bytes,
        resolved: Option<Bytes>,
        read: Read<Actor<SocketAddr>>,
    ) -> Result<Option<Bytes>, Error> {
        if read.siblings() > 1 {
            let context = Some(read.into_context());
            match &resolved {
                Some(v) => self.put(prefix, key, v, context).await?,
                None => self.delete(prefix, key, context).await?,
            }
        }
        Ok(resolved)
    }

    /// Every key under `prefix` that is not deleted, in key order, with its
    /// read ([`Node::iter`]): owned, so it crosses to any thread.
    pub async fn list(&self, prefix: &FullPrefix) -> Result<Vec<(Bytes, Read<Actor<SocketAddr>>)>, Error> {
        let prefix = prefix.clone();
        self.inspect(move |node| node.iter(&prefix).map(|(k, r)| (k.clone(), r)).collect())
            .await
    }

    /// Folds `f` over the keys of `prefix` that are not deleted, in key
    /// order ([`Node::fold`]). `f` runs on the driver's loop, so it copies
    /// nothing it does not keep; keep it short, the node waits for it.
    pub async fn fold<B: Send + 'static>(
        &self,
        prefix: &FullPrefix,
        init: B,
        f: impl FnMut(B, &Bytes, Read<Actor<SocketAddr>>) -> B + Send + 'static,
    ) -> Result<B, Error> {
        let prefix = prefix.clone();
        self.inspect(move |node| node.fold(&prefix, init, f)).await
    }

    /// A hash of everything stored under `prefix`, tombstones included
    /// ([`Node::prefix_hash`]): equal on two nodes when they hold the same
    /// objects there; `None` when the prefix holds nothing.
    pub async fn prefix_hash(&self, prefix: &FullPrefix) -> Result<Option<Digest>, Error> {
        let prefix = prefix.clone();
        self.inspect(move |node| node.prefix_hash(&prefix)).await
    }

    /// Writes the typed `value` under `key` (postcard-encoded, as
    /// [`Typed::put`] stores it), like [`Handle::put`]. Delete with
    /// [`Handle::delete`].
    pub async fn put_typed<T: Serialize>(
        &self,
        prefix: &FullPrefix,
        key: impl IntoBytes,
        value: &T,
        context: Option<metadata::Context<SocketAddr>>,
    ) -> Result<(), Error> {
        let value = typed::encode(value)?;
        self.put(prefix, key, value, context).await
    }

    /// Reads the typed value of `key` resolved to one, as
    /// [`Handle::get_resolved`]: the CRDT merge if the prefix is registered
    /// ([`Handle::register_crdt_typed`]), last-writer-wins otherwise; `None`
    /// if absent or deleted. A stored value that is not a `T` is
    /// [`Error::Typed`].
    pub async fn get_typed<T: DeserializeOwned>(
        &self,
        prefix: &FullPrefix,
        key: impl IntoBytes,
    ) -> Result<Option<T>, Error> {
        match self.get_resolved(prefix, key).await? {
            Some(bytes) => Ok(Some(typed::decode(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Reads every live sibling of `key`, decoded, with the context to
    /// write back ([`Typed::get`]); `None` if absent.
    pub async fn get_typed_siblings<T: Serialize + DeserializeOwned + Send + 'static>(
        &self,
        prefix: &FullPrefix,
        key: impl IntoBytes,
    ) -> Result<Option<TypedRead<SocketAddr, T>>, Error> {
        let (prefix, key) = (prefix.clone(), key.into_bytes());
        Ok(self
            .inspect(move |node| Typed::<T>::new(prefix).get(node, &key))
            .await??)
    }

    /// Every key of `prefix` that is not deleted, in key order, with its
    /// typed value resolved as [`Handle::get_typed`] resolves it; the first
    /// value that is not a `T` fails the whole read. Fold or iterate the
    /// result as any `Vec`.
    pub async fn list_typed<T: DeserializeOwned>(&self, prefix: &FullPrefix) -> Result<Vec<(Bytes, T)>, Error> {
        let prefix = prefix.clone();
        let resolved: Vec<(Bytes, Bytes)> = self
            .inspect(move |node| {
                node.iter(&prefix)
                    .filter_map(|(k, _)| node.get_resolved(&prefix, k).map(|v| (k.clone(), v)))
                    .collect()
            })
            .await?;
        let mut out = Vec::with_capacity(resolved.len());
        for (k, v) in resolved {
            out.push((k, typed::decode(&v)?));
        }
        Ok(out)
    }

    /// Read-modify-write of a typed value: `f` gets the value resolved as
    /// [`Handle::get_typed`] resolves it (or `T::default()`), and the result
    /// is written with the read's context, so it replaces every sibling the
    /// read saw; a write that raced with it stays a sibling (and a CRDT
    /// prefix merges it). Returns what `f` returned.
    pub async fn update_typed<T: Default + Serialize + DeserializeOwned, R>(
        &self,
        prefix: &FullPrefix,
        key: impl IntoBytes,
        f: impl FnOnce(&mut T) -> R,
    ) -> Result<R, Error> {
        let key = key.into_bytes();
        let (p, k) = (prefix.clone(), key.clone());
        let (resolved, context) = self
            .inspect(move |node| {
                let context = node.get(&p, &k).map(Read::into_context);
                (node.get_resolved(&p, &k), context)
            })
            .await?;
        let mut value = match resolved {
            Some(bytes) => typed::decode(&bytes)?,
            None => T::default(),
        };
        let r = f(&mut value);
        self.put_typed(prefix, key, &value, context).await?;
        Ok(r)
    }

    /// Declares `prefix` CRDT-valued on this node ([`Node::register_crdt`]):
    /// reads resolve its siblings with `merger`, and the node owning a
    /// key's siblings writes the merge back, so the prefix converges to one
    /// sibling per key. Register it on every node, before writing.
    pub async fn register_crdt(&self, prefix: &FullPrefix, merger: Merger) -> Result<(), Error> {
        let prefix = prefix.clone();
        self.mutate(move |node, now| node.register_crdt(now, prefix, merger))
            .await
    }

    /// [`Handle::register_crdt`] for values of a [`Merge`] type `T` (a
    /// counter, register, `OrSwot`, `OrMap`), as [`Typed::register`] does.
    pub async fn register_crdt_typed<T: Merge + Default + Serialize + DeserializeOwned>(
        &self,
        prefix: &FullPrefix,
    ) -> Result<(), Error> {
        self.register_crdt(prefix, typed::merger::<T>).await
    }

    /// Subscribes to changes under `prefix`: a stream of every change from
    /// now on, each with the key, its new siblings, its resolved value (the
    /// CRDT merge for a CRDT prefix; [`ChangeExt::typed`](crate::ChangeExt::typed) decodes a typed
    /// one) and how it arrived. Dropping the stream ends the subscription.
    ///
    /// ```no_run
    /// # async fn demo(handle: epidemic_driver::Handle) -> Result<(), epidemic_driver::Error> {
    /// use epidemic_core::metadata::FullPrefix;
    /// use epidemic_driver::ChangeExt;
    ///
    /// let flags = FullPrefix::new("app", "flags");
    /// let mut changes = handle.subscribe(&flags).await?;
    /// while let Some(change) = changes.next().await {
    ///     match change {
    ///         Ok(change) => println!("{:?} is now {:?}", change.key, change.typed::<bool>()),
    ///         // Some changes went missing: read the prefix again.
    ///         Err(lagged) => println!("{lagged}; {} keys now", handle.list(&flags).await?.len()),
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn subscribe(&self, prefix: &FullPrefix) -> Result<Events<Change>, Error> {
        let prefix = prefix.clone();
        self.request(|reply| Command::Subscribe { prefix, reply }).await
    }

    /// Whether the node has stopped entirely (see [`Handle::stopped`]).
    pub fn is_stopped(&self) -> bool {
        self.shared.stopped.is_closed()
    }

    /// Resolves once the node has stopped entirely: its loop ended (by
    /// [`Handle::shutdown`], or its runtime dropped) and its store, if any,
    /// is closed, so its data directory can be opened again.
    pub async fn stopped(&self) {
        future::poll_fn(|cx| self.shared.stopped.poll_pop(cx)).await;
    }

    /// Shuts the node down gracefully: it leaves the overlay (neighbours are
    /// told), queued frames and records drain for up to the configured
    /// linger, links close with a goodbye, every event stream ends, and the
    /// store closes. Resolves once the node has stopped; returns at once if
    /// it already had.
    pub async fn shutdown(&self) -> Result<(), Error> {
        match self.request(|reply| Command::Shutdown { reply }).await {
            Ok(()) | Err(Error::Shutdown) => {}
            Err(e) => return Err(e),
        }
        self.stopped().await;
        Ok(())
    }
}
