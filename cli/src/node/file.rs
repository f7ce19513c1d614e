//! `epidemic node --config FILE.toml`: every option of a node in one file,
//! command-line flags over it, and `--print-config` to show the result.
//!
//! ```toml
//! listen = "127.0.0.1:7001"
//! join = ["127.0.0.1:7000"]
//! data = "/var/lib/epidemic"
//! transport = "quic"
//! cert = "certs/node-1.pem"
//! key = "certs/node-1.key"
//! ca = "certs/ca.pem"
//! json = false                  # --json: JSON lines on stdin and stdout
//!
//! [driver]                      # epidemic_driver::DriverConfig
//! idle_timeout = "30s"
//!
//! [driver.node.membership]      # epidemic_core::membership::Config
//! protocol = "hyparview"
//! shuffle_interval = "10s"
//!
//! [driver.node.metadata]        # epidemic_core::metadata::Config
//! exchange_interval = "10s"
//! ```
//!
//! Every field may be left out; it then takes its default, which the
//! configuration types document with its source.

use super::Transport;
use anyhow::Context;
use epidemic_driver::DriverConfig;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Everything `epidemic node` runs with.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct NodeFile {
    /// The address to listen on, which is also the node's identity.
    pub(crate) listen: Option<SocketAddr>,
    /// Contacts to join through, tried in order.
    pub(crate) join: Vec<SocketAddr>,
    /// The durable store's directory.
    pub(crate) data: Option<PathBuf>,
    /// QUIC or TCP.
    pub(crate) transport: Transport,
    /// This node's certificate (PEM).
    pub(crate) cert: Option<PathBuf>,
    /// This node's private key (PEM).
    pub(crate) key: Option<PathBuf>,
    /// The cluster CA (PEM).
    pub(crate) ca: Option<PathBuf>,
    /// TCP without TLS, for local trials.
    pub(crate) insecure_tcp: bool,
    /// Stdin and stdout as one JSON object per line (`--json`).
    pub(crate) json: bool,
    /// The driver's and the node's settings.
    pub(crate) driver: DriverConfig,
}

impl Default for NodeFile {
    fn default() -> Self {
        NodeFile {
            listen: None,
            join: Vec::new(),
            data: None,
            transport: Transport::Quic,
            cert: None,
            key: None,
            ca: None,
            insecure_tcp: false,
            json: false,
            driver: DriverConfig::default(),
        }
    }
}

impl NodeFile {
    /// Reads `path`; a missing field takes its default, an unknown one is an
    /// error naming it.
    pub(crate) fn load(path: &Path) -> anyhow::Result<NodeFile> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        NodeFile::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    pub(crate) fn parse(text: &str) -> anyhow::Result<NodeFile> {
        Ok(toml::from_str(text)?)
    }

    /// The effective configuration as TOML, defaults included.
    pub(crate) fn to_toml(&self) -> anyhow::Result<String> {
        Ok(toml::to_string_pretty(self)?)
    }

    /// The listening address, which a node cannot do without.
    pub(crate) fn listen(&self) -> anyhow::Result<SocketAddr> {
        self.listen
            .context("no listening address: give --listen or `listen` in --config")
    }

    /// The data directory, which a node cannot do without.
    pub(crate) fn data(&self) -> anyhow::Result<&Path> {
        self.data
            .as_deref()
            .context("no data directory: give --data or `data` in --config")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use epidemic_core::Duration;

    #[test]
    fn a_file_sets_what_it_names_and_leaves_the_rest_at_the_defaults() {
        let file = NodeFile::parse(
            r#"
            listen = "127.0.0.1:7001"
            join = ["127.0.0.1:7000", "127.0.0.1:7002"]
            data = "d"
            transport = "tcp"
            insecure_tcp = true
            json = true

            [driver]
            idle_timeout = "45s"

            [driver.node.membership]
            protocol = "mesh"

            [driver.node.metadata]
            exchange_interval = "2s"
            "#,
        )
        .unwrap();
        assert_eq!(file.listen().unwrap(), "127.0.0.1:7001".parse().unwrap());
        assert_eq!(file.join.len(), 2);
        assert_eq!(file.transport, Transport::Tcp);
        assert!(file.insecure_tcp);
        assert!(file.json);
        assert_eq!(file.driver.idle_timeout, Duration::from_secs(45));
        assert_eq!(file.driver.linger, DriverConfig::default().linger);
        assert!(matches!(
            file.driver.node.membership,
            epidemic_core::membership::Config::Mesh(_)
        ));
        assert_eq!(file.driver.node.metadata.exchange_interval, Duration::from_secs(2));
    }

    #[test]
    fn the_printed_configuration_reads_back_the_same() {
        let mut file = NodeFile::parse("listen = \"127.0.0.1:1\"\ndata = \"x\"").unwrap();
        file.driver.node.seed = 9;
        let printed = file.to_toml().unwrap();
        let back = NodeFile::parse(&printed).unwrap();
        assert_eq!(back.to_toml().unwrap(), printed);
        assert!(printed.contains("shuffle_interval = \"10s\""), "{printed}");
    }

    #[test]
    fn unknown_fields_and_bad_values_are_errors_that_name_them() {
        let e = NodeFile::parse("lisen = \"127.0.0.1:1\"").unwrap_err();
        assert!(format!("{e:#}").contains("lisen"), "{e:#}");
        let e = NodeFile::parse("[driver]\nlinger = 5").unwrap_err();
        assert!(format!("{e:#}").contains("duration"), "{e:#}");
        let e = NodeFile::parse("transport = \"udp\"").unwrap_err();
        assert!(format!("{e:#}").contains("udp"), "{e:#}");
        assert!(NodeFile::default().listen().is_err());
    }
}
