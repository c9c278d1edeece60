//! No text panics the validators.

use joinform::domain::NewSubmission;
use proptest::prelude::*;

use super::{any_text, form_of, plausible_email, schema};

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn validators_never_panic(
        name in any_text(), email in plausible_email(), country in "[a-zA-Z]{0,3}|\\PC{0,3}",
        phone in "[0-9+() .-]{0,20}|\\PC{0,10}", city in any_text(), message in any_text(),
        language in "[a-zA-Z-]{0,40}", consent in any_text(),
    ) {
        let raw = form_of(&[
            ("name", name), ("email", email), ("country", country), ("phone", phone),
            ("city", city), ("message", message), ("language", language), ("consent", consent),
        ]);
        let _ = NewSubmission::parse(&raw, &schema(), None);
    }
}
