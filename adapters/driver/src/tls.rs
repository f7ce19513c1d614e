//! Mutual TLS 1.3 against a cluster CA, for both transports.
//!
//! Every node holds a certificate issued by the cluster's CA (see
//! [`certs`](crate::certs)) and trusts that CA alone. Both ends of every
//! connection present their certificate and verify the other's:
//!
//! - the **server** side requires a client certificate chaining to the CA
//!   (a client with none, or with one from another CA, fails the handshake
//!   and never reaches the node);
//! - the **client** side verifies the server's certificate against the CA
//!   and the cluster-wide name [`SERVER_NAME`], which every node
//!   certificate carries as a DNS subject alternative name.
//!
//! So the CA admits a node to the cluster; a certificate does not pin the
//! address a node claims in its handshake (any member may claim any
//! address). Only TLS 1.3 is offered, with the `ring` provider; QUIC requires
//! 1.3 anyway, and TCP gets the same guarantees.

use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// The DNS name every node certificate carries and every client verifies.
pub const SERVER_NAME: &str = "epidemic-node";

/// The ALPN protocol both transports negotiate.
pub const ALPN: &[u8] = b"epidemic/1";

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM input held no certificate or no private key, or did not parse.
    #[error("bad PEM in {what}: {why}")]
    Pem {
        /// Which input.
        what: &'static str,
        /// What was wrong.
        why: String,
    },
    /// rustls refused the certificate, key or settings.
    #[error("rustls: {0}")]
    Rustls(#[from] rustls::Error),
    /// The CA could not be used to verify peers.
    #[error("verifier: {0}")]
    Verifier(String),
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

/// The crypto provider every configuration here uses: `ring`.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A node's certificate chain and key, and the cluster CA it trusts.
pub struct TlsConfig {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    ca: Vec<CertificateDer<'static>>,
}

impl Clone for TlsConfig {
    fn clone(&self) -> Self {
        TlsConfig {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
            ca: self.ca.clone(),
        }
    }
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("chain", &self.chain.len())
            .field("ca", &self.ca.len())
            .finish_non_exhaustive()
    }
}

fn pem_certs(what: &'static str, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            what,
            why: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            what,
            why: "no certificate".into(),
        });
    }
    Ok(certs)
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Io {
        path: path.display().to_string(),
        source,
    })
}

impl TlsConfig {
    /// From DER: the node's chain (its certificate first), its key, and the
    /// CA certificates it trusts.
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        ca: Vec<CertificateDer<'static>>,
    ) -> Self {
        TlsConfig { chain, key, ca }
    }

    /// From PEM text: the node's certificate (chain), its private key, and
    /// the cluster CA certificate.
    pub fn from_pem(cert: &str, key: &str, ca: &str) -> Result<Self, TlsError> {
        let chain = pem_certs("certificate", cert.as_bytes())?;
        let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).map_err(|e| TlsError::Pem {
            what: "private key",
            why: e.to_string(),
        })?;
        let ca = pem_certs("CA certificate", ca.as_bytes())?;
        Ok(TlsConfig { chain, key, ca })
    }

    /// From PEM files, as written by `epidemic certs`.
    pub fn from_files(cert: &Path, key: &Path, ca: &Path) -> Result<Self, TlsError> {
        let text = |p: &Path| -> Result<String, TlsError> {
            String::from_utf8(read(p)?).map_err(|_| TlsError::Pem {
                what: "file",
                why: format!("{} is not UTF-8", p.display()),
            })
        };
        Self::from_pem(&text(cert)?, &text(key)?, &text(ca)?)
    }

    fn roots(&self) -> Result<Arc<RootCertStore>, TlsError> {
        let mut roots = RootCertStore::empty();
        for ca in &self.ca {
            roots.add(ca.clone())?;
        }
        Ok(Arc::new(roots))
    }

    /// The server side: TLS 1.3 only, a client certificate from the CA
    /// required, ALPN [`ALPN`].
    pub fn server_config(&self) -> Result<ServerConfig, TlsError> {
        let provider = provider();
        let verifier = WebPkiClientVerifier::builder_with_provider(self.roots()?, provider.clone())
            .build()
            .map_err(|e| TlsError::Verifier(e.to_string()))?;
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain.clone(), self.key.clone_key())?;
        config.alpn_protocols = vec![ALPN.to_vec()];
        Ok(config)
    }

    /// The client side: TLS 1.3 only, the server verified against the CA
    /// and [`SERVER_NAME`], this node's certificate offered, ALPN [`ALPN`].
    pub fn client_config(&self) -> Result<ClientConfig, TlsError> {
        let provider = provider();
        let verifier = WebPkiServerVerifier::builder_with_provider(self.roots()?, provider.clone())
            .build()
            .map_err(|e| TlsError::Verifier(e.to_string()))?;
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_webpki_verifier(verifier)
            .with_client_auth_cert(self.chain.clone(), self.key.clone_key())?;
        config.alpn_protocols = vec![ALPN.to_vec()];
        Ok(config)
    }

    /// A client configuration that trusts the CA but presents no
    /// certificate: what a stranger would use. Servers refuse it; it exists
    /// for tests of exactly that.
    pub fn anonymous_client_config(&self) -> Result<ClientConfig, TlsError> {
        let provider = provider();
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_root_certificates(self.roots()?)
            .with_no_client_auth();
        config.alpn_protocols = vec![ALPN.to_vec()];
        Ok(config)
    }
}
