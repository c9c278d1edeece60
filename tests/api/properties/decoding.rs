//! No bytes panic the JSON and urlencoded decoders.

use joinform::http::body::{decode_json, decode_urlencoded};
use proptest::prelude::*;

use super::schema;

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn decoders_never_panic_on_arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_urlencoded(&body, &schema());
        let _ = decode_json(&body, &schema());
    }

    #[test]
    fn decoders_never_panic_on_field_like_text(body in "[a-z&=%0-9A-F+{}\":,\\[\\] ]{0,200}") {
        let _ = decode_urlencoded(body.as_bytes(), &schema());
        let _ = decode_json(body.as_bytes(), &schema());
    }
}
