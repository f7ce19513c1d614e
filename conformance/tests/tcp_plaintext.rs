//! The conformance suite over plaintext TCP, on loopback.

epidemic_conformance::suite!(epidemic_conformance::tcp::Tcp::plaintext_cluster());
