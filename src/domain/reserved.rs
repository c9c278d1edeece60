//! Mail domains that belong to nobody: the names reserved for documentation and
//! testing, where no mail reaches a person.

use std::fmt;

/// Top-level names reserved by RFC 2606 §2 and RFC 6761 §6.2–6.5: `test`, `example`,
/// `invalid` and `localhost`, with every name under them.
/// Each with the name shown for it.
const RESERVED_TOP_LEVEL: [(&str, &str); 4] = [
    ("test", ".test"),
    ("example", ".example"),
    ("invalid", ".invalid"),
    ("localhost", ".localhost"),
];

/// Second-level names reserved by RFC 2606 §3 (and RFC 6761 §6.5), with every name
/// under them.
const RESERVED_SECOND_LEVEL: [&str; 3] = ["example.com", "example.net", "example.org"];

/// The reserved name a mail domain falls under: `example.org` for
/// `oslo.Example.ORG.`, `.test` for `mail.test`.
///
/// A domain is compared as DNS compares it: letters in any case, an absolute name's
/// trailing dot ignored, and a Unicode form mapped first as IDNA (UTS #46) maps it, so
/// `ｅｘａｍｐｌｅ.org` (full-width letters) is `example.org`. An `xn--` label is
/// compared as written: `xn--exmple-cua.org` (`exämple.org`) is another domain, not
/// reserved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservedDomain {
    /// The reserved name itself: `example.org`, or a top-level name with its dot
    /// (`.test`).
    pub reserved: &'static str,
}

impl ReservedDomain {
    /// The reserved name `domain` (the part of an address after `@`) falls under, or
    /// `None` for a domain somebody can hold.
    pub fn of(domain: &str) -> Option<Self> {
        let name = domain.trim().trim_end_matches('.');
        // Mapped as mail software maps it before asking DNS; a name IDNA refuses
        // cannot be looked up at all, so only its case is folded.
        let ascii = idna::domain_to_ascii(name).unwrap_or_else(|_| name.to_ascii_lowercase());
        let mut labels = ascii.rsplit('.');
        let top = labels.next()?;
        if let Some((_, reserved)) = RESERVED_TOP_LEVEL.iter().find(|(label, _)| *label == top) {
            return Some(Self { reserved });
        }
        let second_level = format!("{}.{top}", labels.next()?);
        RESERVED_SECOND_LEVEL
            .iter()
            .find(|reserved| **reserved == second_level)
            .map(|reserved| Self { reserved })
    }

    /// The RFC sections that reserve this name, for messages.
    pub fn rfc(&self) -> &'static str {
        match self.reserved {
            ".test" => "RFC 2606 §2, RFC 6761 §6.2",
            ".localhost" => "RFC 2606 §2, RFC 6761 §6.3",
            ".invalid" => "RFC 2606 §2, RFC 6761 §6.4",
            ".example" => "RFC 2606 §2, RFC 6761 §6.5",
            _ => "RFC 2606 §3, RFC 6761 §6.5",
        }
    }
}

impl fmt::Display for ReservedDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is reserved for examples and tests ({}): no mail to it reaches a person",
            self.reserved,
            self.rfc()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_names_are_found_however_they_are_written() {
        let cases = [
            ("example.org", Some("example.org"), "the name itself"),
            ("example.com", Some("example.com"), "the .com one"),
            ("example.net", Some("example.net"), "the .net one"),
            ("EXAMPLE.ORG", Some("example.org"), "upper case"),
            (
                "Example.Org.",
                Some("example.org"),
                "an absolute name's dot",
            ),
            ("oslo.example.org", Some("example.org"), "a subdomain"),
            (
                "a.b.example.com.",
                Some("example.com"),
                "a deep subdomain, absolute",
            ),
            ("mail.test", Some(".test"), "under .test"),
            ("test", Some(".test"), "the top-level name alone"),
            ("x.EXAMPLE", Some(".example"), "under .example, upper case"),
            (
                "nowhere.invalid.",
                Some(".invalid"),
                "under .invalid, absolute",
            ),
            ("localhost", Some(".localhost"), "localhost"),
            ("box.localhost", Some(".localhost"), "under .localhost"),
            (
                "ｅｘａｍｐｌｅ.org",
                Some("example.org"),
                "full-width letters, IDNA-mapped",
            ),
            (" example.org ", Some("example.org"), "spaces around"),
            ("example.org.uk", None, "example.org is not the end"),
            ("myexample.org", None, "a longer label"),
            ("example.co", None, "another TLD"),
            ("notexample.com", None, "a label that ends like it"),
            ("test.org", None, "test as a second-level label"),
            (
                "xn--exmple-cua.org",
                None,
                "a punycode label is another name",
            ),
            ("exämple.org", None, "a Unicode look-alike is another name"),
            ("join.organisation.no", None, "an ordinary domain"),
            ("", None, "nothing"),
        ];
        for (domain, expected, reason) in cases {
            assert_eq!(
                ReservedDomain::of(domain).map(|found| found.reserved),
                expected,
                "{reason}: {domain}"
            );
        }
    }

    #[test]
    fn the_message_names_the_rfc() {
        let found = ReservedDomain::of("oslo.example.org").unwrap();
        assert_eq!(
            found.to_string(),
            "`example.org` is reserved for examples and tests (RFC 2606 §3, RFC 6761 §6.5): \
             no mail to it reaches a person"
        );
        assert!(
            ReservedDomain::of("a.test")
                .unwrap()
                .rfc()
                .contains("6761 §6.2")
        );
    }
}
