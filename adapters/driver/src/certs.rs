//! Certificates for a cluster: a CA, then one certificate per node.
//!
//! ```
//! use epidemic_driver::certs::ClusterCa;
//!
//! let ca = ClusterCa::generate()?;
//! let node = ca.issue(&["node-1.example", "10.0.0.1"])?;
//! let tls = node.tls_config(&ca)?;
//! let _server = tls.server_config()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Keys are ECDSA P-256. The CA may sign end-entity certificates only (path
//! length 0). Node certificates carry [`SERVER_NAME`] (which peers verify)
//! plus the names given, and are valid both as TLS servers and clients,
//! since every node is both.
//!
//! The CA's distinguished name is fixed, so a CA is rebuilt from its key
//! alone ([`ClusterCa::from_pem`]); two clusters' CAs differ by key, and a
//! certificate from one fails verification against the other.

use crate::tls::{SERVER_NAME, TlsConfig, TlsError};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, date_time_ymd,
};
use std::fmt;

/// The CA's common name.
pub const CA_NAME: &str = "epidemic cluster CA";

/// Why a certificate could not be made or loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// rcgen refused the parameters or the key.
    #[error("certificate generation: {0}")]
    Generate(#[from] rcgen::Error),
    /// The result could not be loaded as a TLS configuration.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// A cluster's certificate authority: its certificate and its signing key.
pub struct ClusterCa {
    key: KeyPair,
    cert_pem: String,
}

impl fmt::Debug for ClusterCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterCa").finish_non_exhaustive()
    }
}

/// A node's certificate and private key, in PEM.
#[derive(Clone)]
#[non_exhaustive]
pub struct NodeCert {
    /// The certificate.
    pub cert_pem: String,
    /// The private key (PKCS#8).
    pub key_pem: String,
}

impl fmt::Debug for NodeCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeCert").finish_non_exhaustive()
    }
}

/// The current calendar year, near enough for validity bounds.
fn this_year() -> i32 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    1970 + i32::try_from(secs / 31_556_952).unwrap_or(0)
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_NAME);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    // From the start of last year (clock skew between machines) for ten years.
    let year = this_year();
    params.not_before = date_time_ymd(year - 1, 1, 1);
    params.not_after = date_time_ymd(year + 10, 1, 1);
    params
}

impl ClusterCa {
    /// A new CA with a fresh key.
    pub fn generate() -> Result<Self, CertError> {
        let key = KeyPair::generate()?;
        let cert_pem = ca_params().self_signed(&key)?.pem();
        Ok(ClusterCa { key, cert_pem })
    }

    /// A CA from its certificate and key as written by
    /// [`ClusterCa::cert_pem`] and [`ClusterCa::key_pem`].
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, CertError> {
        Ok(ClusterCa {
            key: KeyPair::from_pem(key_pem)?,
            cert_pem: cert_pem.to_owned(),
        })
    }

    /// The CA certificate, to distribute to every node.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA's private key; keep it off the nodes.
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// Issues a node certificate valid for [`SERVER_NAME`] and `names` (DNS
    /// names or IP addresses), for five years, as both TLS server and
    /// client.
    pub fn issue<S: AsRef<str>>(&self, names: &[S]) -> Result<NodeCert, CertError> {
        let mut sans = vec![SERVER_NAME.to_owned()];
        sans.extend(names.iter().map(|n| n.as_ref().to_owned()));
        let mut params = CertificateParams::new(sans)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, names.first().map_or(SERVER_NAME, |n| n.as_ref()));
        params.distinguished_name = dn;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        let year = this_year();
        params.not_before = date_time_ymd(year - 1, 1, 1);
        params.not_after = date_time_ymd(year + 5, 1, 1);
        let key = KeyPair::generate()?;
        let issuer = Issuer::new(ca_params(), &self.key);
        let cert = params.signed_by(&key, &issuer)?;
        Ok(NodeCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

impl NodeCert {
    /// The TLS configuration of a node holding this certificate and
    /// trusting `ca`.
    pub fn tls_config(&self, ca: &ClusterCa) -> Result<TlsConfig, CertError> {
        Ok(TlsConfig::from_pem(&self.cert_pem, &self.key_pem, ca.cert_pem())?)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use rustls::pki_types::ServerName;
    use std::sync::Arc;

    /// Runs a TLS handshake in memory between a client and a server config.
    fn handshake(client: rustls::ClientConfig, server: rustls::ServerConfig) -> Result<(), rustls::Error> {
        let name = ServerName::try_from(SERVER_NAME).unwrap();
        let mut c = rustls::ClientConnection::new(Arc::new(client), name)?;
        let mut s = rustls::ServerConnection::new(Arc::new(server))?;
        for _ in 0..10 {
            let mut buf = Vec::new();
            c.write_tls(&mut buf).unwrap();
            if !buf.is_empty() {
                s.read_tls(&mut &buf[..]).unwrap();
                s.process_new_packets()?;
            }
            let mut buf = Vec::new();
            s.write_tls(&mut buf).unwrap();
            if !buf.is_empty() {
                c.read_tls(&mut &buf[..]).unwrap();
                c.process_new_packets()?;
            }
            if !c.is_handshaking() && !s.is_handshaking() {
                // The server's verdict on the client certificate arrives
                // after the client considers itself done; one more round.
                let mut buf = Vec::new();
                c.write_tls(&mut buf).unwrap();
                s.read_tls(&mut &buf[..]).unwrap();
                s.process_new_packets()?;
                return Ok(());
            }
        }
        Err(rustls::Error::General("handshake did not finish".into()))
    }

    #[test]
    fn members_of_one_ca_authenticate_each_other_and_strangers_are_refused() {
        let ca = ClusterCa::generate().unwrap();
        let a = ca.issue(&["a.test"]).unwrap().tls_config(&ca).unwrap();
        let b = ca.issue(&["127.0.0.1"]).unwrap().tls_config(&ca).unwrap();
        handshake(a.client_config().unwrap(), b.server_config().unwrap()).unwrap();
        handshake(b.client_config().unwrap(), a.server_config().unwrap()).unwrap();

        // Another CA: refused both ways.
        let other = ClusterCa::generate().unwrap();
        let x = other.issue(&["x.test"]).unwrap().tls_config(&other).unwrap();
        assert!(handshake(x.client_config().unwrap(), a.server_config().unwrap()).is_err());
        assert!(handshake(a.client_config().unwrap(), x.server_config().unwrap()).is_err());
        // No client certificate: refused.
        assert!(handshake(a.anonymous_client_config().unwrap(), b.server_config().unwrap()).is_err());
    }

    #[test]
    fn a_ca_reloaded_from_pem_issues_certificates_its_cluster_accepts() {
        let ca = ClusterCa::generate().unwrap();
        let again = ClusterCa::from_pem(ca.cert_pem(), &ca.key_pem()).unwrap();
        let a = ca.issue(&["a"]).unwrap().tls_config(&ca).unwrap();
        let b = again.issue(&["b"]).unwrap().tls_config(&again).unwrap();
        handshake(b.client_config().unwrap(), a.server_config().unwrap()).unwrap();
        handshake(a.client_config().unwrap(), b.server_config().unwrap()).unwrap();
    }
}
