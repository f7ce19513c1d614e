//! `epidemic node --json`: one JSON object per line in, one per line out.
//!
//! ```text
//! {"id":1,"op":"put","prefix":"app/users","key":"alice","value":{"b64":"AAE="}}
//! {"id":1,"ok":true}
//! ```
//!
//! Byte fields (`prefix`, `key`, `value`, `payload`) are a JSON string
//! (UTF-8) or `{"b64":"..."}` (standard base64); answers and events write
//! them as a string when they are UTF-8, else as `{"b64":"..."}`. Any
//! `"id"` of a request is echoed in its answer; a failure answers
//! `{"ok":false,"error":"..."}`.

use super::command::{Answer, Event, Request, parse_addr, parse_prefix, source_name};
use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use epidemic_core::metadata::FullPrefix;
use serde_json::{Map, Value, json};

/// A parsed request line: its `id` (if it had one) and the request, or
/// why it is none.
pub(crate) struct Parsed {
    pub(crate) id: Option<Value>,
    pub(crate) request: anyhow::Result<Request>,
}

/// Parses one line; `None` for a blank line.
pub(crate) fn parse(line: &str) -> Option<Parsed> {
    if line.trim().is_empty() {
        return None;
    }
    let value: Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => {
            return Some(Parsed {
                id: None,
                request: Err(anyhow::anyhow!("not JSON: {e}")),
            });
        }
    };
    let Value::Object(object) = value else {
        return Some(Parsed {
            id: None,
            request: Err(anyhow::anyhow!("a request is a JSON object")),
        });
    };
    Some(Parsed {
        id: object.get("id").cloned(),
        request: request(&object),
    })
}

fn request(o: &Map<String, Value>) -> anyhow::Result<Request> {
    let op = match o.get("op") {
        Some(Value::String(op)) => op.as_str(),
        Some(_) => bail!("\"op\" is a string"),
        None => bail!("missing field \"op\""),
    };
    let field = |name: &str| -> anyhow::Result<Bytes> {
        let v = o.get(name).with_context(|| format!("missing field {name:?}"))?;
        decode_bytes(v).with_context(|| format!("field {name:?}"))
    };
    let prefix = || -> anyhow::Result<FullPrefix> { Ok(parse_prefix(&field("prefix")?)) };
    let addr = || -> anyhow::Result<_> {
        match o.get("addr") {
            Some(Value::String(a)) => parse_addr(a),
            Some(_) => bail!("field \"addr\" is a string"),
            None => bail!("missing field \"addr\""),
        }
    };
    Ok(match op {
        "put" => Request::Put {
            prefix: prefix()?,
            key: field("key")?,
            value: field("value")?,
        },
        "get" => Request::Get {
            prefix: prefix()?,
            key: field("key")?,
        },
        "delete" => Request::Delete {
            prefix: prefix()?,
            key: field("key")?,
        },
        "members" => Request::Members,
        "broadcast" => Request::Broadcast {
            payload: field("payload")?,
        },
        "subscribe" => Request::Subscribe { prefix: prefix()? },
        "add-member" => Request::AddMember { addr: addr()? },
        "remove-member" => Request::RemoveMember { addr: addr()? },
        "stats" => Request::Stats { full: true },
        "help" => Request::Help,
        other => bail!("unknown op {other:?}; {{\"op\":\"help\"}} lists them"),
    })
}

/// A byte field: a string, or `{"b64":"..."}`.
fn decode_bytes(v: &Value) -> anyhow::Result<Bytes> {
    match v {
        Value::String(s) => Ok(Bytes::copy_from_slice(s.as_bytes())),
        Value::Object(o) if o.len() == 1 => match o.get("b64") {
            Some(Value::String(b)) => Ok(STANDARD.decode(b).context("bad base64")?.into()),
            _ => bail!("bytes are a string or {{\"b64\":\"...\"}}"),
        },
        _ => bail!("bytes are a string or {{\"b64\":\"...\"}}"),
    }
}

/// Bytes as a string when they are UTF-8, else as `{"b64":"..."}`.
pub(crate) fn encode_bytes(b: &[u8]) -> Value {
    match std::str::from_utf8(b) {
        Ok(s) => Value::String(s.to_owned()),
        Err(_) => json!({ "b64": STANDARD.encode(b) }),
    }
}

/// `prefix` or `prefix/subprefix`, as bytes.
fn encode_prefix(p: &FullPrefix) -> Value {
    let mut b = p.prefix().to_vec();
    if !p.subprefix().is_empty() {
        b.push(b'/');
        b.extend_from_slice(p.subprefix());
    }
    encode_bytes(&b)
}

fn with_id(id: Option<&Value>, mut object: Map<String, Value>) -> String {
    if let Some(id) = id {
        object.insert("id".into(), id.clone());
    }
    Value::Object(object).to_string()
}

/// The answer line of a request that failed.
pub(crate) fn error(id: Option<&Value>, error: &anyhow::Error) -> String {
    let mut o = Map::new();
    o.insert("ok".into(), false.into());
    o.insert("error".into(), format!("{error:#}").into());
    with_id(id, o)
}

/// The answer line of a request that succeeded.
pub(crate) fn answer(id: Option<&Value>, answer: &Answer) -> anyhow::Result<String> {
    let mut o = Map::new();
    o.insert("ok".into(), true.into());
    match answer {
        Answer::Ok | Answer::Subscribed(_) => {}
        Answer::NotAMember => {
            o.insert("was_member".into(), false.into());
        }
        Answer::Values(values) => {
            o.insert("found".into(), (!values.is_empty()).into());
            o.insert("values".into(), values.iter().map(|v| encode_bytes(v)).collect());
        }
        Answer::Members(members) => {
            o.insert("members".into(), members.iter().map(|m| m.to_string()).collect());
        }
        Answer::Stats { stats, .. } => {
            o.insert("stats".into(), serde_json::to_value(stats)?);
        }
        Answer::Help => {
            o.insert("help".into(), super::command::HELP.into());
        }
    }
    Ok(with_id(id, o))
}

/// The line of an asynchronous event.
pub(crate) fn event(event: &Event) -> String {
    match event {
        Event::Delivered(payload) => json!({ "event": "delivered", "payload": encode_bytes(payload) }),
        Event::Changed(c) => json!({
            "event": "changed",
            "prefix": encode_prefix(&c.prefix),
            "key": encode_bytes(&c.key),
            "source": source_name(c.source),
            "value": c.resolved.as_deref().map_or(Value::Null, encode_bytes),
            "siblings": c.read.siblings(),
        }),
        Event::Lagged { stream, missed } => json!({ "event": "lagged", "stream": stream.name(), "missed": missed }),
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(line: &str) -> (Option<Value>, anyhow::Result<Request>) {
        let p = parse(line).expect("not blank");
        (p.id, p.request)
    }

    #[test]
    fn strings_and_base64_both_decode_and_keys_may_hold_spaces() {
        let (id, r) = req(r#"{"id":7,"op":"put","prefix":"app/users","key":"alice smith","value":{"b64":"AP8="}}"#);
        assert_eq!(id, Some(json!(7)));
        assert_eq!(
            r.unwrap(),
            Request::Put {
                prefix: FullPrefix::new("app", "users"),
                key: Bytes::from_static(b"alice smith"),
                value: Bytes::from_static(&[0, 255]),
            }
        );
        let (id, r) = req(r#"{"op":"get","prefix":{"b64":"YXBw"},"key":"k"}"#);
        assert_eq!(id, None);
        assert_eq!(
            r.unwrap(),
            Request::Get {
                prefix: FullPrefix::new("app", ""),
                key: Bytes::from_static(b"k"),
            }
        );
        assert_eq!(req(r#"{"op":"stats"}"#).1.unwrap(), Request::Stats { full: true });
        assert_eq!(
            req(r#"{"op":"add-member","addr":"127.0.0.1:7001"}"#).1.unwrap(),
            Request::AddMember {
                addr: "127.0.0.1:7001".parse().unwrap()
            }
        );
        assert!(parse("   ").is_none());
    }

    #[test]
    fn bytes_round_trip_as_a_string_or_base64() {
        for b in [
            &b"plain text"[..],
            b"with spaces and \"quotes\"",
            &[0, 159, 146, 150, 255],
            b"",
        ] {
            let encoded = encode_bytes(b);
            assert_eq!(encoded.is_string(), std::str::from_utf8(b).is_ok(), "{encoded}");
            assert_eq!(decode_bytes(&encoded).unwrap(), b);
        }
        assert_eq!(encode_bytes(&[0xff]), json!({"b64": "/w=="}));
    }

    #[test]
    fn answers_echo_the_id_and_render_values() {
        let id = json!({"n": [1, "x"]});
        let line = answer(Some(&id), &Answer::Ok).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&line).unwrap(),
            json!({"id": id, "ok": true})
        );
        let line = answer(
            None,
            &Answer::Values(vec![Bytes::from_static(b"a b"), Bytes::from_static(&[1, 0xff])]),
        )
        .unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&line).unwrap(),
            json!({"ok": true, "found": true, "values": ["a b", {"b64": "Af8="}]})
        );
        let line = answer(Some(&json!("q")), &Answer::Values(Vec::new())).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&line).unwrap(),
            json!({"id": "q", "ok": true, "found": false, "values": []})
        );
        let line = error(Some(&json!(3)), &anyhow::anyhow!("refused"));
        assert_eq!(
            serde_json::from_str::<Value>(&line).unwrap(),
            json!({"id": 3, "ok": false, "error": "refused"})
        );
    }

    #[test]
    fn every_malformed_request_is_an_error_not_a_panic() {
        let cases: &[(&str, &str)] = &[
            ("{", "not JSON"),
            ("nonsense", "not JSON"),
            ("[1,2]", "JSON object"),
            ("\"put\"", "JSON object"),
            ("{}", "missing field \"op\""),
            (r#"{"op":5}"#, "\"op\" is a string"),
            (r#"{"op":"frobnicate"}"#, "unknown op"),
            (r#"{"op":"put","prefix":"a","key":"k"}"#, "missing field \"value\""),
            (r#"{"op":"get","key":"k"}"#, "missing field \"prefix\""),
            (r#"{"op":"get","prefix":"a","key":3}"#, "field \"key\""),
            (r#"{"op":"get","prefix":"a","key":{"b64":"!!"}}"#, "bad base64"),
            (
                r#"{"op":"get","prefix":"a","key":{"b64":"AA==","x":1}}"#,
                "field \"key\"",
            ),
            (r#"{"op":"get","prefix":"a","key":{"hex":"00"}}"#, "field \"key\""),
            (r#"{"op":"broadcast"}"#, "missing field \"payload\""),
            (r#"{"op":"add-member","addr":"nowhere"}"#, "not an address"),
            (r#"{"op":"remove-member","addr":1}"#, "\"addr\" is a string"),
            (r#"{"op":"remove-member"}"#, "missing field \"addr\""),
        ];
        for (line, want) in cases {
            let parsed = parse(line).expect("not blank");
            let e = parsed.request.expect_err(line);
            let out: Value = serde_json::from_str(&error(parsed.id.as_ref(), &e)).unwrap();
            assert_eq!(out["ok"], json!(false), "{line}");
            let text = out["error"].as_str().unwrap();
            assert!(text.contains(want), "{line}: {text:?} lacks {want:?}");
        }
        // The id survives a bad request, so the client can still match it.
        let parsed = parse(r#"{"id":"x","op":"nope"}"#).unwrap();
        assert_eq!(parsed.id, Some(json!("x")));
    }
}
