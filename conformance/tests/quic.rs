//! The conformance suite over QUIC with mutual TLS, on loopback.

epidemic_conformance::suite!(epidemic_conformance::quic::Quic::cluster());
