//! The typed layer: serde values over the byte store, and CRDT values that
//! resolve their own siblings.
//!
//! A [`Typed<T>`] names a full prefix whose values are `T`, postcard-encoded.
//! It calls the node's byte API, so everything in the [module docs](super)
//! holds unchanged; it only encodes and decodes. For a [`Merge`] type,
//! [`Typed::register`] makes the prefix CRDT-valued: reads merge the
//! siblings, and the replica that owns them writes the merge back, so the
//! prefix converges to one sibling per key.
//!
//! ```
//! use epidemic_core::crdt::OrSwot;
//! use epidemic_core::metadata::FullPrefix;
//! use epidemic_core::node::typed::Typed;
//! use epidemic_core::node::{Config, Node};
//! use epidemic_core::Instant;
//!
//! let mut config = Config::default();
//! config.metadata.durable = false; // no driver here to confirm writes
//! let mut node: Node<u32> = Node::new(1, config);
//! let now = Instant::ZERO;
//!
//! // Plain serde values.
//! let ports: Typed<u16> = Typed::new(FullPrefix::new("cluster", "ports"));
//! ports.put(&mut node, now, b"http", &8080, None).unwrap();
//! assert_eq!(ports.get_lww(&node, b"http").unwrap(), Some(8080));
//!
//! // A CRDT prefix: updates merge instead of overwriting.
//! let tags: Typed<OrSwot<u32, String>> = Typed::new(FullPrefix::new("cluster", "tags"));
//! tags.register(&mut node, now);
//! tags.update(&mut node, now, b"node-1", |set| { set.add(1, "ssd".into()); }).unwrap();
//! tags.update(&mut node, now, b"node-1", |set| { set.add(1, "gpu".into()); }).unwrap();
//! let merged = tags.get_merged(&node, b"node-1").unwrap().unwrap();
//! assert_eq!(merged.iter().cloned().collect::<Vec<_>>(), ["gpu", "ssd"]);
//! ```

use crate::crdt::Merge;
use crate::identity::Identity;
use crate::metadata::{Context, FullPrefix, PutError, PutId};
use crate::node::Node;
use crate::time::Instant;
use crate::wire::{self, WireError};
use alloc::vec::Vec;
use bytes::Bytes;
use core::fmt;
use core::marker::PhantomData;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why a typed operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TypedError {
    /// The node refused the write.
    Put(PutError),
    /// The value could not be serialized.
    Encode,
    /// A stored value is not a `T` (the prefix holds something else).
    Decode(WireError),
}

impl fmt::Display for TypedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TypedError::Put(e) => write!(f, "write refused: {e}"),
            TypedError::Encode => f.write_str("value could not be serialized"),
            TypedError::Decode(e) => write!(f, "stored value does not decode: {e}"),
        }
    }
}

impl core::error::Error for TypedError {}

impl From<PutError> for TypedError {
    fn from(e: PutError) -> Self {
        TypedError::Put(e)
    }
}

/// The stored form of a typed value (postcard), as [`Typed::put`] writes
/// it: for code that carries typed values to a node it cannot borrow (a
/// network handle).
pub fn encode<T: Serialize>(value: &T) -> Result<Bytes, TypedError> {
    postcard::to_allocvec(value)
        .map(Bytes::from)
        .map_err(|_| TypedError::Encode)
}

/// A typed value from its stored form, as [`Typed::get`] reads it.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, TypedError> {
    wire::decode_body(bytes).map_err(TypedError::Decode)
}

/// The CRDT merge of encoded `T`s: a [`Merger`](super::Merger) for
/// `Node::register_crdt`. `None` if a value does not decode.
pub fn merger<T: Merge + Serialize + DeserializeOwned>(values: &[Bytes]) -> Option<Bytes> {
    let mut it = values.iter();
    let mut acc: T = decode(it.next()?).ok()?;
    for v in it {
        acc.merge(&decode::<T>(v).ok()?);
    }
    encode(&acc).ok()
}

/// A read of a typed key: the live values (tombstones left out) and the
/// context to write back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypedRead<I: Ord, T> {
    values: Vec<T>,
    lww: Option<usize>,
    context: Context<I>,
}

impl<I: Ord + Clone, T> TypedRead<I, T> {
    /// The live siblings.
    pub fn values(&self) -> &[T] {
        &self.values
    }

    /// The last-writer-wins value, `None` if the newest sibling is a
    /// tombstone.
    pub fn lww(&self) -> Option<&T> {
        self.lww.and_then(|i| self.values.get(i))
    }

    /// The context to pass to `put` to overwrite every sibling read here.
    pub fn context(&self) -> &Context<I> {
        &self.context
    }

    /// The live values and the context.
    pub fn into_parts(self) -> (Vec<T>, Context<I>) {
        (self.values, self.context)
    }
}

/// A full prefix holding values of type `T`. See the [module docs](self).
pub struct Typed<T> {
    prefix: FullPrefix,
    _values: PhantomData<fn() -> T>,
}

impl<T> Clone for Typed<T> {
    fn clone(&self) -> Self {
        Typed::new(self.prefix.clone())
    }
}

impl<T> fmt::Debug for Typed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Typed").field("prefix", &self.prefix).finish()
    }
}

impl<T> Typed<T> {
    /// Values of type `T` under `prefix`.
    pub fn new(prefix: FullPrefix) -> Self {
        Typed {
            prefix,
            _values: PhantomData,
        }
    }

    /// The full prefix.
    pub fn prefix(&self) -> &FullPrefix {
        &self.prefix
    }
}

impl<T: Serialize + DeserializeOwned> Typed<T> {
    /// Writes `value` (see `Node::put` for the context).
    pub fn put<I: Identity>(
        &self,
        node: &mut Node<I>,
        now: Instant,
        key: &[u8],
        value: &T,
        context: Option<&Context<I>>,
    ) -> Result<PutId, TypedError> {
        Ok(node.put(now, &self.prefix, key, encode(value)?, context)?)
    }

    /// Deletes `key` (see `Node::delete`).
    pub fn delete<I: Identity>(
        &self,
        node: &mut Node<I>,
        now: Instant,
        key: &[u8],
        context: Option<&Context<I>>,
    ) -> Result<PutId, TypedError> {
        Ok(node.delete(now, &self.prefix, key, context)?)
    }

    /// The siblings of `key`, decoded; `None` if absent.
    pub fn get<I: Identity>(&self, node: &Node<I>, key: &[u8]) -> Result<Option<TypedRead<I, T>>, TypedError> {
        let Some(read) = node.get(&self.prefix, key) else {
            return Ok(None);
        };
        let winner = read.lww().cloned();
        let mut values = Vec::new();
        let mut lww = None;
        for v in read.live() {
            if winner.as_ref() == Some(v) && lww.is_none() {
                lww = Some(values.len());
            }
            values.push(decode(v)?);
        }
        Ok(Some(TypedRead {
            values,
            lww,
            context: read.into_context(),
        }))
    }

    /// The last-writer-wins value of `key`; `None` if absent or deleted.
    pub fn get_lww<I: Identity>(&self, node: &Node<I>, key: &[u8]) -> Result<Option<T>, TypedError> {
        match node.get(&self.prefix, key).as_ref().and_then(|r| r.lww()) {
            Some(bytes) => decode(bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Every key that is not deleted, in key order, with its LWW value.
    pub fn iter<'a, I: Identity>(
        &self,
        node: &'a Node<I>,
    ) -> impl Iterator<Item = (Bytes, Result<T, TypedError>)> + 'a {
        node.iter(&self.prefix)
            .filter_map(|(k, read)| read.lww().map(|v| (k.clone(), decode(v))))
    }
}

impl<T: Merge + Default + Serialize + DeserializeOwned> Typed<T> {
    /// Makes the prefix CRDT-valued on `node`: reads merge siblings, and the
    /// replica owning them writes the merge back (see "Reads" in the
    /// [module docs](super)). Register it on every node.
    pub fn register<I: Identity>(&self, node: &mut Node<I>, now: Instant) {
        node.register_crdt(now, self.prefix.clone(), merger::<T>);
    }

    /// The merge of the live siblings of `key`; `None` if absent or deleted.
    pub fn get_merged<I: Identity>(&self, node: &Node<I>, key: &[u8]) -> Result<Option<T>, TypedError> {
        let Some(read) = self.get(node, key)? else {
            return Ok(None);
        };
        let mut values = read.values.into_iter();
        let Some(mut acc) = values.next() else {
            return Ok(None);
        };
        for v in values {
            acc.merge(&v);
        }
        Ok(Some(acc))
    }

    /// Read-modify-write: `f` gets the merged value (or `T::default()`), and
    /// the result is written with the read's context, so it replaces every
    /// sibling this node holds.
    pub fn update<I: Identity, R>(
        &self,
        node: &mut Node<I>,
        now: Instant,
        key: &[u8],
        f: impl FnOnce(&mut T) -> R,
    ) -> Result<(PutId, R), TypedError> {
        let context = node.get(&self.prefix, key).map(|r| r.into_context());
        let mut value = self.get_merged(node, key)?.unwrap_or_default();
        let r = f(&mut value);
        let id = self.put(node, now, key, &value, context.as_ref())?;
        Ok((id, r))
    }
}
