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
//!
//! With `--json` (or `json = true` in the config file) every input line is
//! one JSON object and so is every output line; byte fields are a string
//! or `{"b64":"..."}`, and an `"id"` is echoed:
//!
//! ```text
//! {"id":1,"op":"put","prefix":"app/users","key":"alice smith","value":"admin"}
//! {"id":1,"ok":true}
//! {"id":2,"op":"get","prefix":"app/users","key":"alice smith"}
//! {"found":true,"id":2,"ok":true,"values":["admin"]}
//! {"op":"frobnicate"}
//! {"error":"unknown op \"frobnicate\"; {\"op\":\"help\"} lists them","ok":false}
//! ```
//!
//! Ops: `put` (prefix, key, value), `get` and `delete` (prefix, key),
//! `members`, `broadcast` (payload), `subscribe` (prefix), `add-member`
//! and `remove-member` (addr), `stats` (every counter), `help`. Events come
//! as `{"event":"delivered","payload":..}`, `{"event":"changed","prefix":..,
//! "key":..,"source":"local|broadcast|anti_entropy","value":.. or null,
//! "siblings":N}` and `{"event":"lagged","stream":"subscribe|deliveries",
//! "missed":N}`. See [`json`] for the details.

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use command::{Answer, Event, Request, Stream};
use epidemic_driver::tls::TlsConfig;
use epidemic_driver::{Change, Events, Handle, JoinError, JoinWait, MembershipEvent};
use futures_lite::future::block_on;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use std::net::SocketAddr;
use std::path::PathBuf;

mod command;
mod file;
mod json;
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
///
/// With `--json`, every stdin line is one JSON object and so is every
/// stdout line: `{"id":1,"op":"get","prefix":"app/users","key":"alice"}`
/// answers `{"found":true,"id":1,"ok":true,"values":["admin"]}`. Bytes are
/// a string or `{"b64":"..."}`; `{"op":"help"}` lists the ops.
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
    /// Machine-readable stdin and stdout: one JSON object per line, e.g.
    /// `{"id":1,"op":"put","prefix":"app/users","key":"alice","value":"admin"}`
    /// answers `{"id":1,"ok":true}`; `{"op":"help"}` lists the ops. Bytes
    /// are a string or `{"b64":"..."}`.
    #[arg(long)]
    json: bool,
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
        file.json |= self.json;
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

/// Prints `event` as a line of the mode.
fn print_event(json: bool, event: &Event) -> bool {
    let line = if json {
        json::event(event)
    } else {
        command::event_text(event)
    };
    command::emit(&[line])
}

/// Prints each change of a subscription, from a thread of its own.
fn watch_changes(json: bool, mut changes: Events<Change>) {
    std::thread::spawn(move || {
        while let Some(change) = changes.blocking_next() {
            let event = match change {
                Ok(c) => Event::Changed(c),
                Err(lagged) => Event::Lagged {
                    stream: Stream::Subscribe,
                    missed: lagged.0,
                },
            };
            if !print_event(json, &event) {
                return;
            }
        }
    });
}

/// Runs one request; a subscription starts printing its changes.
fn run_request(handle: &Handle, json: bool, request: Request) -> anyhow::Result<Answer> {
    let answer = command::execute(handle, request)?;
    Ok(match answer {
        Answer::Subscribed(changes) => {
            watch_changes(json, changes);
            Answer::Ok
        }
        other => other,
    })
}

/// Answers one text command line.
fn answer_text(handle: &Handle, line: &str) -> Vec<String> {
    let answered = command::parse_text(line).and_then(|request| match request {
        Some(request) => command::answer_text(&run_request(handle, false, request)?),
        None => Ok(Vec::new()),
    });
    answered.unwrap_or_else(|e| vec![format!("error: {e:#}")])
}

/// Answers one `--json` request line.
fn answer_json(handle: &Handle, line: &str) -> Vec<String> {
    let Some(parsed) = json::parse(line) else {
        return Vec::new();
    };
    let id = parsed.id.as_ref();
    let answered = parsed
        .request
        .and_then(|request| json::answer(id, &run_request(handle, true, request)?));
    vec![answered.unwrap_or_else(|e| json::error(id, &e))]
}

/// Answers each command line of stdin on stdout, until the end of input.
fn serve_stdin(handle: &Handle, json: bool) {
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    loop {
        let refused = match lines::next_line(&mut input, lines::MAX_LINE) {
            Ok(None) => return,
            Ok(Some(lines::Line::Text(line))) => {
                let answers = if json {
                    answer_json(handle, &line)
                } else {
                    answer_text(handle, &line)
                };
                if !command::emit(&answers) {
                    return;
                }
                continue;
            }
            Ok(Some(lines::Line::NotUtf8)) => anyhow::anyhow!("the line is not UTF-8"),
            Ok(Some(lines::Line::TooLong)) => anyhow::anyhow!("the line is longer than {} bytes", lines::MAX_LINE),
            Err(e) => {
                tracing::warn!(error = %e, "reading stdin failed: no more commands");
                return;
            }
        };
        let answer = if json {
            json::error(None, &refused)
        } else {
            format!("error: {refused:#}")
        };
        if !command::emit(&[answer]) {
            return;
        }
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
    let json = args.json;
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
            let event = match delivery {
                Ok(d) => Event::Delivered(d.payload),
                Err(lagged) => Event::Lagged {
                    stream: Stream::Deliveries,
                    missed: lagged.0,
                },
            };
            if !print_event(json, &event) {
                return;
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
        std::thread::spawn(move || serve_stdin(&handle, json));
    }
    if let Ok(Some(signal)) = signal.join() {
        tracing::info!(signal, "leaving the cluster");
    }
    node.shutdown_blocking()?;
    let _ = watcher.join();
    Ok(())
}
