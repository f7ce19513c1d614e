//! The conformance suite over plaintext TCP, on loopback, with the
//! durability tests.

use epidemic_conformance::tcp::Tcp;

epidemic_conformance::suite!(Tcp::plaintext_cluster());
epidemic_conformance::mesh_suite!(Tcp::plaintext_mesh_cluster());
epidemic_conformance::durability_suite!(Tcp::plaintext());
