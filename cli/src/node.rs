//! `epidemic node`: a real node on TCP or QUIC, driven by line commands on
//! stdin and answering on stdout.
//!
//! ```text
//! put PREFIX KEY VALUE   ->  ok
//! get PREFIX KEY         ->  the value, the siblings one per line, or not_found
//! delete PREFIX KEY      ->  ok
//! members                ->  one address per line, this node's included
//! broadcast TEXT         ->  ok; other nodes print `delivered TEXT`
//! subscribe PREFIX       ->  ok; then `changed PREFIX KEY SOURCE VALUE` per change
//!                            (`lagged N` if N changes went unprinted)
//! add-member ADDR        ->  ok (mesh mode)
//! remove-member ADDR     ->  ok, or not_a_member (mesh mode)
//! stats                  ->  one line of name=value counters
//! stats json             ->  every counter of the core and the driver, as JSON
//! help                   ->  the commands
//! ```
//!
//! `PREFIX` is `prefix` or `prefix/subprefix`; `VALUE` is the rest of the
//! line. A put answers `ok` once the write is on disk. Anything wrong
//! answers one line starting with `error:`, and the node goes on. After the
//! end of input (or with `--no-stdin`) the node keeps serving; SIGINT or
//! SIGTERM leaves the cluster gracefully and exits. Neighbours coming and
//! going are reported on stderr.

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use epidemic_core::metadata::FullPrefix;
use epidemic_driver::tls::TlsConfig;
use epidemic_driver::{Handle, JoinError, JoinWait, MembershipEvent};
use futures_lite::future::block_on;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

mod file;
mod lines;

use file::NodeFile;

/// Which transport a node speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Transport {
    /// QUIC (quinn) with mutual TLS 1.3; needs --cert, --key and --ca.
    Quic,
    /// TCP (smol) with mutual TLS 1.3 (--cert, --key, --ca), or plaintext
    /// with --insecure-tcp.
    Tcp,
}

/// Run a node: join a cluster, and read commands on stdin.
///
/// Every option can also be set in a TOML file (`--config`); a flag given
/// on the command line overrides the file.
///
/// Limits (defaults; `--print-config` shows them all): a value 64 KiB, an
/// object with its siblings 256 KiB, prefix + subprefix + key 1,024 bytes
/// (prefix and subprefix 255 each), 1,000,000 keys, a frame 1 MiB, a
/// command line 256 KiB.
#[derive(Debug, Args)]
pub(crate) struct NodeArgs {
    /// A TOML file of options; `--print-config` shows every one of them.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print the effective configuration (the file, the flags over it, and
    /// every default) as TOML, and exit.
    #[arg(long)]
    print_config: bool,
    /// Address to listen on, which is also the node's identity (the address
    /// peers dial), e.g. 127.0.0.1:7001.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// A node to join through; repeat for fallbacks, tried in order.
    /// Replaces the file's `join` list.
    #[arg(long = "join", value_name = "ADDR")]
    join: Vec<SocketAddr>,
    /// Directory of the node's durable store (created if missing); a
    /// restart with the same directory restores the node's data.
    #[arg(long = "data", value_name = "DIR")]
    data: Option<PathBuf>,
    /// The transport [default: quic].
    #[arg(long, value_enum)]
    transport: Option<Transport>,
    /// This node's certificate (PEM), from `epidemic certs`.
    #[arg(long, value_name = "FILE")]
    cert: Option<PathBuf>,
    /// This node's private key (PEM).
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// The cluster CA certificate (PEM).
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// TCP without TLS: no encryption, no authentication. Local trials only.
    #[arg(long)]
    insecure_tcp: bool,
    /// What to log on stderr, as a tracing filter (`info`,
    /// `epidemic_driver=debug,warn`); overrides `RUST_LOG`. Default: `info`.
    #[arg(long, value_name = "FILTER")]
    log: Option<String>,
    /// Log one JSON object per line instead of text.
    #[arg(long)]
    log_json: bool,
    /// Serve the node's counters and gauges as Prometheus text on
    /// `http://ADDR/metrics`.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,
    /// Read no commands: serve until SIGINT or SIGTERM (as a service).
    /// Without it, commands are read until the end of stdin, and the node
    /// keeps serving after that too.
    #[arg(long)]
    no_stdin: bool,
}

/// Logs go to stderr, filtered by `--log`, else `RUST_LOG`, else `info`.
fn init_logging(args: &NodeArgs) -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    let filter = match &args.log {
        Some(f) => EnvFilter::try_new(f).with_context(|| format!("--log {f:?}"))?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = if args.log_json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    installed.map_err(|e| anyhow::anyhow!("installing the logger: {e}"))
}

impl NodeArgs {
    /// The file (or the defaults), with every flag given laid over it.
    fn effective(&self) -> anyhow::Result<NodeFile> {
        let mut file = match &self.config {
            Some(path) => NodeFile::load(path)?,
            None => NodeFile::default(),
        };
        if self.listen.is_some() {
            file.listen = self.listen;
        }
        if !self.join.is_empty() {
            file.join = self.join.clone();
        }
        if self.data.is_some() {
            file.data = self.data.clone();
        }
        if let Some(t) = self.transport {
            file.transport = t;
        }
        for (flag, field) in [
            (&self.cert, &mut file.cert),
            (&self.key, &mut file.key),
            (&self.ca, &mut file.ca),
        ] {
            if flag.is_some() {
                field.clone_from(flag);
            }
        }
        file.insecure_tcp |= self.insecure_tcp;
        Ok(file)
    }
}

fn tls(args: &NodeFile) -> anyhow::Result<Option<TlsConfig>> {
    match (&args.cert, &args.key, &args.ca) {
        (Some(cert), Some(key), Some(ca)) => Ok(Some(
            TlsConfig::from_files(cert, key, ca).context("loading the TLS certificate, key and CA")?,
        )),
        (None, None, None) => Ok(None),
        _ => bail!("--cert, --key and --ca go together"),
    }
}

/// A running node of either transport; dropping it stops it.
enum Running {
    Tcp(epidemic_tcp::TcpNode),
    Quic(epidemic_quic::QuicNode),
}

impl Running {
    fn handle(&self) -> &Handle {
        match self {
            Running::Tcp(n) => n.handle(),
            Running::Quic(n) => n.handle(),
        }
    }

    /// Leaves the cluster gracefully and stops; blocks until done.
    fn shutdown_blocking(self) -> Result<(), epidemic_driver::Error> {
        match self {
            Running::Tcp(n) => n.shutdown_blocking(),
            Running::Quic(n) => n.shutdown_blocking(),
        }
    }
}

fn start(args: &NodeFile) -> anyhow::Result<Running> {
    let tls = tls(args)?;
    let listen = args.listen()?;
    let data = args.data()?.to_path_buf();
    match args.transport {
        Transport::Quic => {
            if args.insecure_tcp {
                bail!("--insecure-tcp applies to --transport tcp only; QUIC always runs TLS");
            }
            let Some(tls) = tls else {
                bail!("--transport quic needs --cert, --key and --ca (see `epidemic certs`)");
            };
            let mut config = epidemic_quic::QuicConfig::new(listen, tls);
            config.driver = args.driver.clone();
            config.contacts = args.join.clone();
            config.data_dir = Some(data);
            Ok(Running::Quic(
                epidemic_quic::QuicNode::start(config).context("starting the QUIC node")?,
            ))
        }
        Transport::Tcp => {
            let mut config = match (tls, args.insecure_tcp) {
                (Some(_), true) => bail!("--insecure-tcp and a certificate: choose one"),
                (Some(tls), false) => epidemic_tcp::TcpConfig::tls(listen, tls),
                (None, true) => epidemic_tcp::TcpConfig::insecure_plaintext(listen),
                (None, false) => {
                    bail!("--transport tcp needs --cert, --key and --ca, or --insecure-tcp for a plaintext trial")
                }
            };
            config.driver = args.driver.clone();
            config.contacts = args.join.clone();
            config.data_dir = Some(data);
            Ok(Running::Tcp(
                epidemic_tcp::TcpNode::start(config).context("starting the TCP node")?,
            ))
        }
    }
}

/// `prefix` or `prefix/subprefix`.
fn parse_prefix(s: &str) -> FullPrefix {
    match s.split_once('/') {
        Some((p, sub)) => FullPrefix::new(p, sub),
        None => FullPrefix::new(s, ""),
    }
}

/// Splits off the first whitespace-separated word.
fn word(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_start();
    if s.is_empty() {
        return None;
    }
    Some(s.split_once(char::is_whitespace).unwrap_or((s, "")))
}

/// What `help` answers.
const HELP: &str = "\
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
PREFIX is prefix or prefix/subprefix.";

/// Runs one command line; returns the answer lines.
fn execute(handle: &Handle, line: &str) -> Vec<String> {
    match run_command(handle, line) {
        Ok(lines) => lines,
        Err(e) => vec![format!("error: {e:#}")],
    }
}

fn run_command(handle: &Handle, line: &str) -> anyhow::Result<Vec<String>> {
    let Some((command, rest)) = word(line) else {
        return Ok(Vec::new());
    };
    let usage = |u: &str| anyhow::anyhow!("usage: {u}");
    match command {
        "put" => {
            let (prefix, rest) = word(rest).ok_or_else(|| usage("put PREFIX KEY VALUE"))?;
            let (key, value) = word(rest).ok_or_else(|| usage("put PREFIX KEY VALUE"))?;
            let value = value.trim_start();
            block_on(handle.put(&parse_prefix(prefix), key, value, None))?;
            Ok(vec!["ok".into()])
        }
        "get" => {
            let (prefix, rest) = word(rest).ok_or_else(|| usage("get PREFIX KEY"))?;
            let (key, _) = word(rest).ok_or_else(|| usage("get PREFIX KEY"))?;
            let read = block_on(handle.get(&parse_prefix(prefix), key))?;
            let values: Vec<String> = read
                .iter()
                .flat_map(|r| r.live())
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .collect();
            Ok(if values.is_empty() {
                vec!["not_found".into()]
            } else {
                values
            })
        }
        "delete" => {
            let (prefix, rest) = word(rest).ok_or_else(|| usage("delete PREFIX KEY"))?;
            let (key, _) = word(rest).ok_or_else(|| usage("delete PREFIX KEY"))?;
            block_on(handle.delete(&parse_prefix(prefix), key, None))?;
            Ok(vec!["ok".into()])
        }
        "help" => Ok(HELP.lines().map(str::to_owned).collect()),
        "broadcast" => {
            let text = rest.trim_start();
            if text.is_empty() {
                return Err(usage("broadcast TEXT"));
            }
            block_on(handle.broadcast(text))?;
            Ok(vec!["ok".into()])
        }
        "add-member" | "remove-member" => {
            let (addr, _) = word(rest).ok_or_else(|| usage("add-member ADDR | remove-member ADDR"))?;
            let addr: SocketAddr = addr.parse().with_context(|| format!("{addr:?} is not an address"))?;
            if command == "add-member" {
                block_on(handle.add_member(addr))?;
                Ok(vec!["ok".into()])
            } else {
                let was = block_on(handle.remove_member(addr))?;
                Ok(vec![if was { "ok" } else { "not_a_member" }.into()])
            }
        }
        "subscribe" => {
            let (prefix, _) = word(rest).ok_or_else(|| usage("subscribe PREFIX"))?;
            let mut changes = block_on(handle.subscribe(&parse_prefix(prefix)))?;
            std::thread::spawn(move || {
                while let Some(change) = changes.blocking_next() {
                    match change {
                        Ok(c) => println!(
                            "changed {}/{} {} {:?} {}",
                            String::from_utf8_lossy(c.prefix.prefix()),
                            String::from_utf8_lossy(c.prefix.subprefix()),
                            String::from_utf8_lossy(&c.key),
                            c.source,
                            c.resolved
                                .as_deref()
                                .map_or("<deleted>".into(), String::from_utf8_lossy),
                        ),
                        // Some changes went missing: `get` reads them again.
                        Err(lagged) => println!("lagged {}", lagged.0),
                    }
                }
            });
            Ok(vec!["ok".into()])
        }
        "members" => Ok(block_on(handle.members())?.into_iter().map(|m| m.to_string()).collect()),
        "stats" if rest.trim() == "json" => Ok(vec![serde_json::to_string(&block_on(handle.stats())?)?]),
        "stats" => {
            let s = block_on(handle.stats())?;
            let (n, d, m) = (&s.node, &s.driver, &s.node.metadata);
            let neighbors = block_on(handle.neighbors())?.len();
            Ok(vec![format!(
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
            )])
        }
        other => bail!("unknown command {other:?}; `help` lists them"),
    }
}

/// Answers each command line of stdin on stdout, until the end of input.
fn serve_stdin(handle: &Handle) {
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut stdout = std::io::stdout();
    loop {
        let answers = match lines::next_line(&mut input, lines::MAX_LINE) {
            Ok(None) => return,
            Ok(Some(lines::Line::Text(line))) => execute(handle, &line),
            Ok(Some(lines::Line::NotUtf8)) => vec!["error: the line is not UTF-8".to_owned()],
            Ok(Some(lines::Line::TooLong)) => vec![format!("error: the line is longer than {} bytes", lines::MAX_LINE)],
            Err(e) => {
                tracing::warn!(error = %e, "reading stdin failed: no more commands");
                return;
            }
        };
        for answer in answers {
            if writeln!(stdout, "{answer}").is_err() {
                return;
            }
        }
        let _ = stdout.flush();
    }
}

/// Logs when the node has joined, or, if it has not within `wait`, each
/// contact and why it failed.
fn report_join(handle: &Handle, wait: JoinWait) {
    match block_on(handle.joined(wait)) {
        Ok(()) => tracing::info!(neighbors = wait.neighbors, "joined the cluster"),
        Err(JoinError::Timeout {
            neighbors, contacts, ..
        }) => {
            let after = wait.timeout;
            tracing::warn!(neighbors, ?after, "not joined yet: still retrying the contacts");
            for (contact, why) in contacts {
                tracing::warn!(%contact, %why, "join contact failed");
            }
        }
        Err(e) => tracing::info!(error = %e, "stopped waiting for the join"),
    }
}

/// `epidemic node`.
pub(crate) fn run(args: &NodeArgs) -> anyhow::Result<()> {
    let no_stdin = args.no_stdin;
    let file = args.effective()?;
    if args.print_config {
        print!("{}", file.to_toml()?);
        return Ok(());
    }
    init_logging(args)?;
    if let Some(addr) = args.metrics {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .with_http_listener(addr)
            .install()
            .with_context(|| format!("serving metrics on {addr}"))?;
        tracing::info!(%addr, "serving Prometheus metrics");
    }
    let args = &file;
    let node = start(args)?;
    let handle = node.handle().clone();
    eprintln!(
        "epidemic node {} ({:?}) data in {}",
        handle.identity(),
        args.transport,
        args.data()?.display()
    );
    // Neighbour changes on stderr and deliveries on stdout, from threads
    // of their own.
    let mut membership = handle.membership();
    std::thread::spawn(move || {
        while let Some(event) = membership.blocking_next() {
            match event {
                Ok(MembershipEvent::NeighborUp(p)) => eprintln!("neighbor up {p}"),
                Ok(MembershipEvent::NeighborDown(p)) => eprintln!("neighbor down {p}"),
                Ok(_) => {}
                Err(lagged) => eprintln!("membership: {lagged}"),
            }
        }
    });
    let mut deliveries = handle.deliveries();
    let watcher = std::thread::spawn(move || {
        while let Some(delivery) = deliveries.blocking_next() {
            match delivery {
                Ok(d) => println!("delivered {}", String::from_utf8_lossy(&d.payload)),
                Err(lagged) => println!("lagged {}", lagged.0),
            }
        }
    });
    if !args.join.is_empty() {
        // Says whether the join took, or why each contact failed, without
        // holding up the prompt; the node keeps retrying either way.
        let handle = handle.clone();
        std::thread::spawn(move || report_join(&handle, JoinWait::default()));
    }
    // SIGINT and SIGTERM leave the cluster gracefully: the neighbours hear
    // a goodbye at once instead of waiting for a timeout.
    let mut signals = Signals::new([SIGINT, SIGTERM]).context("installing the signal handlers")?;
    let signal = std::thread::spawn(move || signals.forever().next());
    if !no_stdin {
        let handle = handle.clone();
        // Commands until the end of input, then the node keeps serving:
        // under nohup, `&` or a supervisor, stdin is empty or closed.
        std::thread::spawn(move || serve_stdin(&handle));
    }
    if let Ok(Some(signal)) = signal.join() {
        tracing::info!(signal, "leaving the cluster");
    }
    node.shutdown_blocking()?;
    let _ = watcher.join();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_words_parse() {
        assert_eq!(parse_prefix("app/users"), FullPrefix::new("app", "users"));
        assert_eq!(parse_prefix("app"), FullPrefix::new("app", ""));
        assert_eq!(word("  put a b c "), Some(("put", "a b c ")));
        assert_eq!(word("members"), Some(("members", "")));
        assert_eq!(word("   "), None);
    }
}
