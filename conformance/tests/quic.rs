//! The conformance suite over QUIC with mutual TLS, on loopback, with the
//! durability and credential tests.

use epidemic_conformance::quic::Quic;

epidemic_conformance::suite!(Quic::cluster());
epidemic_conformance::mesh_suite!(Quic::mesh_cluster());
epidemic_conformance::durability_suite!(Quic::new());
epidemic_conformance::credentials_suite!(Quic::new());
