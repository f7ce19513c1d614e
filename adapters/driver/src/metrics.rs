//! The node's counters through the [`metrics`](https://docs.rs/metrics)
//! crate (feature `metrics`), so any exporter serves them: Prometheus,
//! StatsD. Every second the loop publishes each number of its
//! [`NodeStats`] as a gauge named after its path, with the node's
//! identity as the `node` label (`epidemic_driver_links_opened`,
//! `epidemic_node_metadata_keys`, `epidemic_node_sent_anti_entropy_bytes`,
//! ...), and each peer queue's depth as `epidemic_peer_queue_frames` with
//! a `peer` label. Counters are published as gauges of their running
//! totals; a rate is a `rate()` or `deriv()` away.

use crate::stats::NodeStats;
use serde_json::Value;
use std::net::SocketAddr;

/// Publishes `stats` and the peer queue depths of the node `identity`.
pub(crate) fn publish(identity: SocketAddr, stats: &NodeStats, queues: impl Iterator<Item = (SocketAddr, usize)>) {
    let node = identity.to_string();
    if let Ok(value) = serde_json::to_value(stats) {
        each_number(&value, &mut String::from("epidemic"), &mut |name, v| {
            metrics::gauge!(name.to_owned(), "node" => node.clone()).set(v);
        });
    }
    for (peer, depth) in queues {
        metrics::gauge!("epidemic_peer_queue_frames", "node" => node.clone(), "peer" => peer.to_string())
            .set(depth as f64);
    }
}

/// Calls `f` with the path and value of every number (and boolean, as 0 or
/// 1) in `value`.
fn each_number(value: &Value, path: &mut String, f: &mut impl FnMut(&str, f64)) {
    match value {
        Value::Number(n) => {
            if let Some(v) = n.as_f64() {
                f(path, v);
            }
        }
        Value::Bool(b) => f(path, f64::from(u8::from(*b))),
        Value::Object(fields) => {
            for (key, field) in fields {
                let len = path.len();
                path.push('_');
                path.push_str(key);
                each_number(field, path, f);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_number_gets_a_path_name() {
        let value = serde_json::json!({"node": {"sent": {"hyparview": {"bytes": 3}}, "ok": true}, "driver": {"dials": 2, "name": "x"}});
        let mut seen = Vec::new();
        each_number(&value, &mut String::from("epidemic"), &mut |n, v| {
            seen.push((n.to_owned(), v))
        });
        seen.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            seen,
            [
                ("epidemic_driver_dials".to_owned(), 2.0),
                ("epidemic_node_ok".to_owned(), 1.0),
                ("epidemic_node_sent_hyparview_bytes".to_owned(), 3.0),
            ]
        );
    }
}
