//! Arbitrary bytes into the frame decoder: every input decodes or yields a
//! typed error, and whatever decodes re-encodes to the same bytes.
#![no_main]

use epidemic_core::wire::{self, DEFAULT_MAX_FRAME, WireError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match wire::split(data, DEFAULT_MAX_FRAME) {
        Ok((kind, body)) => {
            assert_eq!(data[0], wire::PROTOCOL_VERSION);
            assert_eq!(data[1], kind as u8);
            assert_eq!(body.len(), data.len() - wire::HEADER_LEN);
        }
        Err(WireError::Truncated { len }) => assert!(len < wire::HEADER_LEN),
        Err(WireError::UnsupportedVersion(v)) => assert_ne!(v, wire::PROTOCOL_VERSION),
        Err(WireError::UnknownKind(_)) => {}
        Err(e) => panic!("split can only fail on the header, got {e:?}"),
    }
});
