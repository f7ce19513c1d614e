//! `epidemic certs`: a cluster CA, then a certificate per node.
//!
//! ```text
//! epidemic certs --out certs --node n1 --node n2 --node n3
//!   certs/ca.pem, certs/ca.key                  the CA (created unless present)
//!   certs/n1.pem, certs/n1.key, ...             one certificate and key per node
//! ```
//!
//! Run it again with more `--node`s to add nodes: an existing CA in the
//! directory is reused. Keys are written readable by their owner only. Keep
//! `ca.key` off the nodes; each node needs `ca.pem`, its own `.pem` and its
//! own `.key`.

use anyhow::{Context, bail};
use clap::Args;
use epidemic_driver::certs::ClusterCa;
use std::path::{Path, PathBuf};

/// Create a cluster CA and node certificates.
#[derive(Debug, Args)]
pub(crate) struct CertsArgs {
    /// Directory to write into (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// A node to issue a certificate for; repeat for each node. The name
    /// (a host name or an IP address) also goes into the certificate.
    #[arg(long = "node", value_name = "NAME", required = true)]
    nodes: Vec<String>,
}

fn write(path: &Path, contents: &str, secret: bool) -> anyhow::Result<()> {
    std::fs::write(path, contents).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("restricting {}", path.display()))?;
    }
    #[cfg(not(unix))]
    let _ = secret;
    Ok(())
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':' | '_'))
}

/// `epidemic certs`.
pub(crate) fn run(args: &CertsArgs) -> anyhow::Result<()> {
    for name in &args.nodes {
        if !valid_name(name) {
            bail!("{name:?}: a node name is letters, digits, '-', '.', ':' and '_'");
        }
    }
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let (ca_pem, ca_key) = (args.out.join("ca.pem"), args.out.join("ca.key"));
    let ca = if ca_pem.exists() && ca_key.exists() {
        let cert = std::fs::read_to_string(&ca_pem).with_context(|| format!("reading {}", ca_pem.display()))?;
        let key = std::fs::read_to_string(&ca_key).with_context(|| format!("reading {}", ca_key.display()))?;
        println!("using the CA in {}", ca_pem.display());
        ClusterCa::from_pem(&cert, &key).context("loading the CA")?
    } else {
        let ca = ClusterCa::generate().context("generating the CA")?;
        write(&ca_pem, ca.cert_pem(), false)?;
        write(&ca_key, &ca.key_pem(), true)?;
        println!("wrote {} and {}", ca_pem.display(), ca_key.display());
        ca
    };
    for name in &args.nodes {
        let cert = ca.issue(&[name]).with_context(|| format!("issuing for {name}"))?;
        // ':' is fine in a SAN (IPv6) but not in every file system.
        let file = name.replace(':', "_");
        let (pem, key) = (
            args.out.join(format!("{file}.pem")),
            args.out.join(format!("{file}.key")),
        );
        write(&pem, &cert.cert_pem, false)?;
        write(&key, &cert.key_pem, true)?;
        println!("wrote {} and {}", pem.display(), key.display());
    }
    Ok(())
}
