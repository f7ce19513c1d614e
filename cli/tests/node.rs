//! `epidemic certs` and `epidemic node`, end to end: three node processes
//! on loopback, driven through stdin, converge.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Receiver<String>,
    addr: String,
}

fn epidemic() -> Command {
    Command::new(env!("CARGO_BIN_EXE_epidemic"))
}

/// Starts `epidemic node` with `args`, and waits for its address on stderr.
fn node(args: &[&str]) -> Proc {
    let mut child = epidemic()
        .arg("node")
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (out_tx, stdout) = channel();
    let out = BufReader::new(child.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            let _ = out_tx.send(line);
        }
    });
    let (err_tx, stderr) = channel();
    let err = BufReader::new(child.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in err.lines().map_while(Result::ok) {
            let _ = err_tx.send(line);
        }
    });
    // "epidemic node 127.0.0.1:PORT (...) data in ...", after the log lines
    // of the start.
    let first = loop {
        let line = stderr.recv_timeout(Duration::from_secs(20)).expect("the node starts");
        if line.starts_with("epidemic node ") {
            break line;
        }
    };
    let addr = first
        .strip_prefix("epidemic node ")
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_owned();
    // Keep draining stderr so the node never blocks on it.
    std::thread::spawn(move || while stderr.recv().is_ok() {});
    Proc {
        stdin: child.stdin.take(),
        child,
        stdout,
        addr,
    }
}

impl Proc {
    /// Sends one command; returns the answer lines that arrive within a
    /// short while (at least one).
    fn ask(&mut self, line: &str) -> Vec<String> {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
        let mut lines = vec![self.stdout.recv_timeout(Duration::from_secs(20)).expect("an answer")];
        while let Ok(l) = self.stdout.recv_timeout(Duration::from_millis(100)) {
            lines.push(l);
        }
        lines
    }

    /// Asks until the answer is `want`, for up to 20 s.
    fn until(&mut self, line: &str, want: &[&str]) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.ask(line) == want {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Closes stdin (the node keeps serving), then sends SIGTERM (a
    /// graceful leave) and waits for a clean exit.
    fn finish(mut self) {
        drop(self.stdin.take());
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "the node exited at the end of its input"
        );
        self.terminate();
    }

    /// SIGTERM, and a clean exit (status 0, not death by the signal).
    fn terminate(&mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status}");
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn three_nodes_converge(extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let data = |n: &str| dir.path().join(n).display().to_string();
    let with = |n: &str, join: Option<&str>| -> Vec<String> {
        let mut a: Vec<String> = extra.iter().map(|s| s.replace("{node}", n)).collect();
        a.extend(["--data".into(), data(n)]);
        if let Some(j) = join {
            a.extend(["--join".into(), j.to_owned()]);
        }
        a
    };
    fn args(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    let mut n1 = node(&args(&with("n1", None)));
    let mut n2 = node(&args(&with("n2", Some(&n1.addr))));
    let mut n3 = node(&args(&with("n3", Some(&n1.addr))));

    assert_eq!(n1.ask("put app/users alice admin"), ["ok"]);
    assert!(n3.until("get app/users alice", &["admin"]), "the put reached n3");
    assert!(n2.until("get app/users alice", &["admin"]), "the put reached n2");
    assert_eq!(n2.ask("delete app/users alice"), ["ok"]);
    assert!(n1.until("get app/users alice", &["not_found"]), "the delete reached n1");
    assert_eq!(n3.ask("get app/users nobody"), ["not_found"]);
    assert!(n1.ask("stats")[0].starts_with("neighbors="));
    // The put and the delete reached n3 through the metadata engine, and
    // its stats say so (it read the plain engine's counter before).
    let stats = n3.ask("stats").remove(0);
    let counter = |name: &str| -> u64 {
        let field = stats
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
            .unwrap_or_else(|| panic!("no {name} in {stats}"));
        field.parse().unwrap()
    };
    assert!(counter("metadata_delivered") + counter("repaired") >= 2, "{stats}");
    assert_eq!(counter("broadcasts_delivered"), 0, "{stats}");
    let json: serde_json::Value = serde_json::from_str(&n3.ask("stats json")[0]).unwrap();
    assert!(json["node"]["metadata"]["keys"].as_u64().is_some(), "{json}");
    assert!(n1.ask("frobnicate")[0].starts_with("error:"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while n1.ask("members").len() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(n1.ask("members").len(), 3);
    n3.finish();
    n2.finish();
    n1.finish();
}

#[test]
fn three_plaintext_tcp_nodes_converge() {
    three_nodes_converge(&["--transport", "tcp", "--insecure-tcp"]);
}

#[test]
fn certs_then_three_quic_nodes_converge() {
    let certs = tempfile::tempdir().unwrap();
    let out = certs.path().display().to_string();
    let status = epidemic()
        .args(["certs", "--out", &out, "--node", "n1", "--node", "n2", "--node", "n3"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let c = |f: &str| format!("{out}/{f}");
    let (cert, key, ca) = (c("{node}.pem"), c("{node}.key"), c("ca.pem"));
    three_nodes_converge(&["--transport", "quic", "--cert", &cert, "--key", &key, "--ca", &ca]);
}

#[test]
fn quic_without_certificates_and_tcp_without_a_choice_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    for args in [
        vec!["node", "--listen", "127.0.0.1:0", "--data", &d],
        vec!["node", "--listen", "127.0.0.1:0", "--data", &d, "--transport", "tcp"],
    ] {
        let out = epidemic().args(&args).stdin(Stdio::null()).output().unwrap();
        assert!(!out.status.success(), "{args:?} started");
        assert!(String::from_utf8_lossy(&out.stderr).contains("--cert"), "{args:?}");
    }
}

/// `--config` sets what a file names, a flag overrides the file, and
/// `--print-config` shows the effective result with every default.
#[test]
fn a_config_file_with_flags_over_it_is_what_print_config_shows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.toml");
    std::fs::write(
        &path,
        "listen = \"127.0.0.1:7001\"\ndata = \"from-file\"\ntransport = \"tcp\"\n\n[driver]\nidle_timeout = \"45s\"\n",
    )
    .unwrap();
    let out = epidemic()
        .args(["node", "--config"])
        .arg(&path)
        .args(["--data", "from-flag", "--print-config"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8(out.stdout).unwrap();
    for want in [
        "listen = \"127.0.0.1:7001\"",
        "data = \"from-flag\"",
        "transport = \"tcp\"",
        "idle_timeout = \"45s\"",
        "linger = \"2s\"",
        "exchange_interval = \"10s\"",
    ] {
        assert!(printed.contains(want), "{want} missing from:\n{printed}");
    }
    std::fs::write(&path, "listen = \"127.0.0.1:7001\"\nlisten_typo = 1\n").unwrap();
    let out = epidemic()
        .args(["node", "--config"])
        .arg(&path)
        .arg("--print-config")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("listen_typo"));
}

/// A node run as a service (no stdin) leaves gracefully on SIGTERM: it exits
/// with status 0 and its peer drops it at once, not after a timeout (TCP
/// keepalive here: 10 s).
#[test]
fn a_service_node_leaves_on_sigterm_and_its_peer_drops_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = |n: &str| dir.path().join(n).display().to_string();
    let plain = ["--transport", "tcp", "--insecure-tcp"];
    let mut n1 = node(&[&plain[..], &["--data", &data("n1")]].concat());
    let mut n2 = node(&[&plain[..], &["--data", &data("n2"), "--no-stdin", "--join", &n1.addr]].concat());
    let deadline = Instant::now() + Duration::from_secs(20);
    while n1.ask("members").len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(n1.ask("members").len(), 2, "n2 joined");
    // Unknown commands, bad bytes and help: an answer each, and n1 goes on.
    assert!(n1.ask("frobnicate")[0].starts_with("error:"));
    assert!(n1.ask("help").iter().any(|l| l.starts_with("put PREFIX KEY VALUE")));
    {
        let stdin = n1.stdin.as_mut().unwrap();
        stdin.write_all(b"get \xff\xfe k\n").unwrap();
        stdin.flush().unwrap();
    }
    assert_eq!(
        n1.stdout.recv_timeout(Duration::from_secs(20)).unwrap(),
        "error: the line is not UTF-8"
    );
    n2.terminate();
    let left = Instant::now();
    let mut members = n1.ask("members");
    while members.len() > 1 && left.elapsed() < Duration::from_secs(8) {
        std::thread::sleep(Duration::from_millis(50));
        members = n1.ask("members");
    }
    assert_eq!(members, [n1.addr.clone()], "n1 still lists the node that left");
    n1.finish();
}

/// `--metrics ADDR` serves the node's counters as Prometheus text: a scrape
/// shows the driver's and the store's numbers, labelled with the node.
#[test]
fn metrics_are_served_for_prometheus() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let data = dir.path().join("m").display().to_string();
    let mut n = node(&[
        "--transport",
        "tcp",
        "--insecure-tcp",
        "--data",
        &data,
        "--metrics",
        &port.to_string(),
    ]);
    assert_eq!(n.ask("put app/users alice admin"), ["ok"]);
    let scrape = || -> String {
        let Ok(mut s) = std::net::TcpStream::connect(port) else {
            return String::new();
        };
        let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let mut body = String::new();
        let _ = s.read_to_string(&mut body);
        body
    };
    let want = format!("epidemic_node_metadata_puts{{node=\"{}\"}} 1", n.addr);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut body = scrape();
    while !body.contains(&want) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        body = scrape();
    }
    assert!(body.contains(&want), "no {want} in:\n{body}");
    assert!(body.contains("epidemic_driver_links_opened"), "{body}");
    assert!(body.contains("# TYPE epidemic_node_metadata_keys gauge"), "{body}");
    n.finish();
}

/// `broadcast` reaches the other node, which prints `delivered TEXT`;
/// `subscribe` prints each change under its prefix, with its source.
#[test]
fn broadcasts_and_subscriptions_print_on_the_other_node() {
    let dir = tempfile::tempdir().unwrap();
    let data = |n: &str| dir.path().join(n).display().to_string();
    let plain = ["--transport", "tcp", "--insecure-tcp"];
    let mut n1 = node(&[&plain[..], &["--data", &data("n1")]].concat());
    let mut n2 = node(&[&plain[..], &["--data", &data("n2"), "--join", &n1.addr]].concat());
    let deadline = Instant::now() + Duration::from_secs(20);
    while n2.ask("members").len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(n2.ask("subscribe app/users"), ["ok"]);
    assert_eq!(n1.ask("broadcast hello everyone"), ["ok"]);
    assert_eq!(n1.ask("put app/users alice admin"), ["ok"]);
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.len() < 2 && Instant::now() < deadline {
        if let Ok(line) = n2.stdout.recv_timeout(Duration::from_millis(200)) {
            seen.push(line);
        }
    }
    seen.sort();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen[0].starts_with("changed app/users alice"), "{seen:?}");
    assert_eq!(seen[1], "delivered hello everyone");
    assert!(
        n1.ask("add-member 127.0.0.1:9")[0].starts_with("error:"),
        "HyParView has no member list to edit"
    );
    n2.finish();
    n1.finish();
}

/// `--json`: two nodes replicate a binary value under a key with spaces,
/// the subscriber prints a JSON `changed` event for it, ids are echoed,
/// and malformed lines answer `ok:false` while the node goes on.
#[test]
fn json_mode_replicates_binary_values_and_reports_changes() {
    use serde_json::{Value, json};
    let dir = tempfile::tempdir().unwrap();
    let data = |n: &str| dir.path().join(n).display().to_string();
    let plain = ["--transport", "tcp", "--insecure-tcp", "--json"];
    let mut n1 = node(&[&plain[..], &["--data", &data("n1")]].concat());
    let mut n2 = node(&[&plain[..], &["--data", &data("n2"), "--join", &n1.addr]].concat());
    let parse = |line: &str| -> Value { serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}")) };
    // The one answer to a line, events (a late change) left aside.
    let answer = |n: &mut Proc, line: &str| -> Value {
        let answers: Vec<Value> = n
            .ask(line)
            .iter()
            .map(|l| parse(l))
            .filter(|v| v.get("event").is_none())
            .collect();
        assert_eq!(answers.len(), 1, "{line}: {answers:?}");
        answers.into_iter().next().unwrap()
    };
    let ask = |n: &mut Proc, request: Value| -> Value { answer(n, &request.to_string()) };
    let members = |n: &mut Proc| ask(n, json!({"op": "members"}))["members"].as_array().unwrap().len();
    let deadline = Instant::now() + Duration::from_secs(20);
    while members(&mut n2) < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(members(&mut n2), 2, "n2 joined");
    assert_eq!(
        ask(&mut n2, json!({"id": "s", "op": "subscribe", "prefix": "app/users"})),
        json!({"id": "s", "ok": true})
    );
    let binary = json!({"b64": "AP8BeA=="});
    assert_eq!(
        ask(
            &mut n1,
            json!({"id": 1, "op": "put", "prefix": "app/users", "key": "alice smith", "value": binary})
        ),
        json!({"id": 1, "ok": true})
    );
    // The subscriber's event, on a line of its own.
    let deadline = Instant::now() + Duration::from_secs(20);
    let changed = loop {
        let line = n2
            .stdout
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("a changed event");
        let event = parse(&line);
        if event["event"] == "changed" {
            break event;
        }
    };
    assert_eq!(changed["prefix"], "app/users", "{changed}");
    assert_eq!(changed["key"], "alice smith", "{changed}");
    assert_eq!(changed["value"], binary, "{changed}");
    assert_eq!(changed["siblings"], 1, "{changed}");
    assert!(
        ["broadcast", "anti_entropy"].contains(&changed["source"].as_str().unwrap()),
        "{changed}"
    );
    let got = ask(
        &mut n2,
        json!({"id": [2], "op": "get", "prefix": "app/users", "key": "alice smith"}),
    );
    assert_eq!(got, json!({"id": [2], "ok": true, "found": true, "values": [binary]}));
    let missing = ask(&mut n2, json!({"op": "get", "prefix": "app/users", "key": "nobody"}));
    assert_eq!(missing, json!({"ok": true, "found": false, "values": []}));
    // Malformed lines: an ok:false answer each, and the node goes on.
    for bad in [
        "{not json",
        r#"{"id":9,"op":"frobnicate"}"#,
        r#"{"op":"put","prefix":"a"}"#,
    ] {
        let answer = answer(&mut n2, bad);
        assert_eq!(answer["ok"], false, "{bad}: {answer}");
        assert!(answer["error"].is_string(), "{bad}: {answer}");
    }
    {
        let stdin = n2.stdin.as_mut().unwrap();
        stdin.write_all(b"{\"op\":\"get\",\"key\":\"\xff\"}\n").unwrap();
        stdin.flush().unwrap();
    }
    let answer = parse(&n2.stdout.recv_timeout(Duration::from_secs(20)).unwrap());
    assert_eq!(answer, json!({"ok": false, "error": "the line is not UTF-8"}));
    let stats = ask(&mut n2, json!({"op": "stats"}));
    assert!(stats["stats"]["node"]["metadata"]["keys"].as_u64().is_some(), "{stats}");
    assert_eq!(members(&mut n2), 2);
    n2.finish();
    n1.finish();
}
