//! The conformance suite over TCP with mutual TLS, on loopback.

epidemic_conformance::suite!(epidemic_conformance::tcp::Tcp::tls_cluster());
