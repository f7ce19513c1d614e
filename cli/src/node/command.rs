//! One execution path for both input syntaxes: a line (text or `--json`)
//! parses into a [`Request`], [`execute`] runs it against the [`Handle`]
//! into an [`Answer`], and the mode renders the answer (text here,
//! JSON in [`super::json`]). Asynchronous lines (deliveries, changes, lag)
//! are [`Event`]s, rendered the same way.

use anyhow::{Context, bail};
use bytes::Bytes;
use epidemic_core::metadata::{ChangeSource, FullPrefix};
use epidemic_driver::{Change, Events, Handle, NodeStats};
use futures_lite::future::block_on;
use std::io::Write;
use std::net::SocketAddr;

/// What `help` answers.
pub(crate) const HELP: &str = "\
put PREFIX KEY VALUE   write VALUE (the rest of the line); ok once on disk
get PREFIX KEY         the value, its siblings one per line, or not_found
delete PREFIX KEY      delete the key; ok once on disk
members                the known members, this node included
broadcast TEXT         send TEXT to every node (printed there as `delivered TEXT`)
subscribe PREFIX       print `changed PREFIX KEY SOURCE VALUE` for every change under PREFIX
add-member ADDR        (mesh mode) make ADDR a member
remove-member ADDR     (mesh mode) remove ADDR; not_a_member if it was none
stats                  the main counters on one line
stats json             every counter of the core and the driver
help                   this list
PREFIX is prefix or prefix/subprefix.
With --json, each line is a JSON object instead, e.g.
{\"op\":\"put\",\"prefix\":\"app/users\",\"key\":\"alice\",\"value\":\"admin\",\"id\":1}  ->  {\"id\":1,\"ok\":true}
(ops: put get delete members broadcast subscribe add-member remove-member stats help;
bytes as a string or {\"b64\":\"...\"}; any \"id\" is echoed).";

/// A command, whichever syntax it came in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Request {
    Put {
        prefix: FullPrefix,
        key: Bytes,
        value: Bytes,
    },
    Get {
        prefix: FullPrefix,
        key: Bytes,
    },
    Delete {
        prefix: FullPrefix,
        key: Bytes,
    },
    Members,
    Broadcast {
        payload: Bytes,
    },
    Subscribe {
        prefix: FullPrefix,
    },
    AddMember {
        addr: SocketAddr,
    },
    RemoveMember {
        addr: SocketAddr,
    },
    /// `full`: every counter (`stats json`), not the one-line summary.
    Stats {
        full: bool,
    },
    Help,
}

/// What a request produced.
pub(crate) enum Answer {
    Ok,
    /// `remove-member` of an address that was no member.
    NotAMember,
    /// The live siblings of a key; none when it is not found.
    Values(Vec<Bytes>),
    Members(Vec<SocketAddr>),
    Stats {
        stats: Box<NodeStats>,
        neighbors: usize,
        full: bool,
    },
    Help,
    /// A subscription: its changes, for the caller to print as events.
    Subscribed(Events<Change>),
}

/// A line printed on its own, between answers.
pub(crate) enum Event {
    Delivered(Bytes),
    Changed(Change),
    Lagged { stream: Stream, missed: u64 },
}

/// Which stream fell behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Subscribe,
    Deliveries,
}

impl Stream {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Stream::Subscribe => "subscribe",
            Stream::Deliveries => "deliveries",
        }
    }
}

/// `local`, `broadcast` or `anti_entropy` (`other` for a source added later).
pub(crate) fn source_name(source: ChangeSource) -> &'static str {
    match source {
        ChangeSource::Local => "local",
        ChangeSource::Broadcast => "broadcast",
        ChangeSource::AntiEntropy => "anti_entropy",
        _ => "other",
    }
}

/// `prefix` or `prefix/subprefix`.
pub(crate) fn parse_prefix(s: &[u8]) -> FullPrefix {
    match s.iter().position(|&b| b == b'/') {
        Some(i) => FullPrefix::new(&s[..i], &s[i + 1..]),
        None => FullPrefix::new(s, b""),
    }
}

/// Splits off the first whitespace-separated word.
pub(crate) fn word(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_start();
    if s.is_empty() {
        return None;
    }
    Some(s.split_once(char::is_whitespace).unwrap_or((s, "")))
}

fn bytes(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

pub(crate) fn parse_addr(addr: &str) -> anyhow::Result<SocketAddr> {
    addr.parse().with_context(|| format!("{addr:?} is not an address"))
}

/// A text command line; `None` for a blank line.
pub(crate) fn parse_text(line: &str) -> anyhow::Result<Option<Request>> {
    let Some((command, rest)) = word(line) else {
        return Ok(None);
    };
    let usage = |u: &str| anyhow::anyhow!("usage: {u}");
    let prefix_key = |u: &str| -> anyhow::Result<(FullPrefix, Bytes)> {
        let (prefix, rest) = word(rest).ok_or_else(|| usage(u))?;
        let (key, _) = word(rest).ok_or_else(|| usage(u))?;
        Ok((parse_prefix(prefix.as_bytes()), bytes(key)))
    };
    Ok(Some(match command {
        "put" => {
            let u = "put PREFIX KEY VALUE";
            let (prefix, rest) = word(rest).ok_or_else(|| usage(u))?;
            let (key, value) = word(rest).ok_or_else(|| usage(u))?;
            Request::Put {
                prefix: parse_prefix(prefix.as_bytes()),
                key: bytes(key),
                value: bytes(value.trim_start()),
            }
        }
        "get" => {
            let (prefix, key) = prefix_key("get PREFIX KEY")?;
            Request::Get { prefix, key }
        }
        "delete" => {
            let (prefix, key) = prefix_key("delete PREFIX KEY")?;
            Request::Delete { prefix, key }
        }
        "help" => Request::Help,
        "broadcast" => {
            let text = rest.trim_start();
            if text.is_empty() {
                return Err(usage("broadcast TEXT"));
            }
            Request::Broadcast { payload: bytes(text) }
        }
        "add-member" | "remove-member" => {
            let (addr, _) = word(rest).ok_or_else(|| usage("add-member ADDR | remove-member ADDR"))?;
            let addr = parse_addr(addr)?;
            if command == "add-member" {
                Request::AddMember { addr }
            } else {
                Request::RemoveMember { addr }
            }
        }
        "subscribe" => {
            let (prefix, _) = word(rest).ok_or_else(|| usage("subscribe PREFIX"))?;
            Request::Subscribe {
                prefix: parse_prefix(prefix.as_bytes()),
            }
        }
        "members" => Request::Members,
        "stats" => Request::Stats {
            full: rest.trim() == "json",
        },
        other => bail!("unknown command {other:?}; `help` lists them"),
    }))
}

/// Runs one request against the node.
pub(crate) fn execute(handle: &Handle, request: Request) -> anyhow::Result<Answer> {
    Ok(match request {
        Request::Put { prefix, key, value } => {
            block_on(handle.put(&prefix, key, value, None))?;
            Answer::Ok
        }
        Request::Get { prefix, key } => {
            let read = block_on(handle.get(&prefix, key))?;
            Answer::Values(read.iter().flat_map(|r| r.live()).cloned().collect())
        }
        Request::Delete { prefix, key } => {
            block_on(handle.delete(&prefix, key, None))?;
            Answer::Ok
        }
        Request::Members => Answer::Members(block_on(handle.members())?),
        Request::Broadcast { payload } => {
            block_on(handle.broadcast(payload))?;
            Answer::Ok
        }
        Request::Subscribe { prefix } => Answer::Subscribed(block_on(handle.subscribe(&prefix))?),
        Request::AddMember { addr } => {
            block_on(handle.add_member(addr))?;
            Answer::Ok
        }
        Request::RemoveMember { addr } => {
            if block_on(handle.remove_member(addr))? {
                Answer::Ok
            } else {
                Answer::NotAMember
            }
        }
        Request::Stats { full } => Answer::Stats {
            stats: Box::new(block_on(handle.stats())?),
            neighbors: block_on(handle.neighbors())?.len(),
            full,
        },
        Request::Help => Answer::Help,
    })
}

/// The text lines of an answer (a subscription answers `ok`).
pub(crate) fn answer_text(answer: &Answer) -> anyhow::Result<Vec<String>> {
    let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    Ok(match answer {
        Answer::Ok | Answer::Subscribed(_) => vec!["ok".into()],
        Answer::NotAMember => vec!["not_a_member".into()],
        Answer::Values(values) if values.is_empty() => vec!["not_found".into()],
        Answer::Values(values) => values.iter().map(|v| lossy(v)).collect(),
        Answer::Members(members) => members.iter().map(ToString::to_string).collect(),
        Answer::Help => HELP.lines().map(str::to_owned).collect(),
        Answer::Stats { stats, full: true, .. } => vec![serde_json::to_string(stats)?],
        Answer::Stats { stats, neighbors, .. } => {
            let (n, d, m) = (&stats.node, &stats.driver, &stats.node.metadata);
            vec![format!(
                "neighbors={neighbors} frames_sent={} frames_received={} invalid_frames={} broadcasts_delivered={} \
                 metadata_delivered={} keys={} tombstones={} puts={} deletes={} repaired={} exchanges_completed={} \
                 exchanges_failed={} collected={} links_opened={} links_failed={} bad_input={} handshake_failures={} \
                 queue_overflows={} dial_failures={} restored={} open_links={}",
                n.sent.total().messages,
                n.received.total().messages,
                n.invalid_frames,
                n.plumtree.delivered,
                n.metadata_plumtree.delivered,
                m.keys,
                m.tombstones,
                m.puts,
                m.deletes,
                m.repaired,
                m.exchanges_completed,
                m.exchanges_failed + m.exchanges_timed_out,
                m.collected,
                d.links_opened,
                d.links_failed,
                d.bad_input,
                d.handshake_failures,
                d.queue_overflows,
                d.dial_failures,
                d.restored,
                d.open_links,
            )]
        }
    })
}

/// The text line of an event.
pub(crate) fn event_text(event: &Event) -> String {
    let lossy = String::from_utf8_lossy;
    match event {
        Event::Delivered(payload) => format!("delivered {}", lossy(payload)),
        Event::Changed(c) => format!(
            "changed {}/{} {} {:?} {}",
            lossy(c.prefix.prefix()),
            lossy(c.prefix.subprefix()),
            lossy(&c.key),
            c.source,
            c.resolved.as_deref().map_or("<deleted>".into(), lossy),
        ),
        // Some changes went missing: `get` reads them again.
        Event::Lagged { missed, .. } => format!("lagged {missed}"),
    }
}

/// Writes `lines` to stdout under one lock, so lines from other threads
/// never land in the middle; false once stdout is gone.
pub(crate) fn emit<S: AsRef<str>>(lines: &[S]) -> bool {
    let mut out = std::io::stdout().lock();
    for line in lines {
        if writeln!(out, "{}", line.as_ref()).is_err() {
            return false;
        }
    }
    out.flush().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_words_parse() {
        assert_eq!(parse_prefix(b"app/users"), FullPrefix::new("app", "users"));
        assert_eq!(parse_prefix(b"app"), FullPrefix::new("app", ""));
        assert_eq!(word("  put a b c "), Some(("put", "a b c ")));
        assert_eq!(word("members"), Some(("members", "")));
        assert_eq!(word("   "), None);
    }

    #[test]
    fn text_lines_parse_into_requests() {
        assert_eq!(
            parse_text("put app/users alice the admin").unwrap(),
            Some(Request::Put {
                prefix: FullPrefix::new("app", "users"),
                key: Bytes::from_static(b"alice"),
                value: Bytes::from_static(b"the admin"),
            })
        );
        assert_eq!(parse_text("stats json").unwrap(), Some(Request::Stats { full: true }));
        assert_eq!(parse_text("  ").unwrap(), None);
        for bad in ["put a", "get a", "broadcast ", "add-member x", "frobnicate"] {
            assert!(parse_text(bad).is_err(), "{bad}");
        }
    }
}
