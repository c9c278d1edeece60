//! The visitor's email address.

use std::fmt;

use validator::ValidateEmail;

use super::FieldProblem;
use super::text::trim_edges;

const MAX_ADDRESS_BYTES: usize = 254;
const MAX_LOCAL_BYTES: usize = 64;

/// An address we can reply to: a dot-atom local part (case kept) at a domain of two or
/// more DNS labels (stored lower-case, in Unicode; IDNA for sending).
///
/// Stricter than RFC 5322 on purpose: no quoted strings, comments, IP literals or
/// single-label domains. People do not sign up with those, and mail software often
/// mishandles them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberEmail {
    local: String,
    domain: String,
    ascii_domain: String,
}

impl MemberEmail {
    pub fn parse(raw: &str) -> Result<Self, FieldProblem> {
        // Surrounding spaces and invisible characters are trimmed, but a line break or
        // tab is never part of an address someone typed: it is refused, not trimmed.
        let address = trim_edges(raw);
        if address.chars().any(|c| c.is_control()) {
            return Err(FieldProblem::InvalidEmail);
        }
        if address.is_empty() {
            return Err(FieldProblem::Required);
        }
        // The validator crate is the first gate; the rules below are stricter than it.
        if address.len() > MAX_ADDRESS_BYTES || !address.validate_email() {
            return Err(FieldProblem::InvalidEmail);
        }
        let (local, domain) = address.rsplit_once('@').ok_or(FieldProblem::InvalidEmail)?;
        if !is_dot_atom(local) {
            return Err(FieldProblem::InvalidEmail);
        }
        let ascii_domain =
            idna::domain_to_ascii_strict(domain).map_err(|_| FieldProblem::InvalidEmail)?;
        if !is_host_name(&ascii_domain) || local.len() + 1 + ascii_domain.len() > MAX_ADDRESS_BYTES
        {
            return Err(FieldProblem::InvalidEmail);
        }
        let (unicode_domain, result) = idna::domain_to_unicode(&ascii_domain);
        result.map_err(|_| FieldProblem::InvalidEmail)?;
        Ok(Self {
            local: local.to_owned(),
            domain: unicode_domain,
            ascii_domain,
        })
    }

    /// The address as duplicate checks and erasure match it: lower-case, domain mapped
    /// by IDNA. `Kari@Example.ORG` and `kari@example.org` have the same key.
    pub fn key(&self) -> String {
        // The local part is ASCII (a dot-atom), so ASCII lower-casing is the whole job.
        format!("{}@{}", self.local.to_ascii_lowercase(), self.domain)
    }

    /// The address with its domain in ASCII (punycode), as SMTP needs it.
    pub fn to_ascii(&self) -> String {
        format!("{}@{}", self.local, self.ascii_domain)
    }
}

impl fmt::Display for MemberEmail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

/// RFC 5322 dot-atom of ASCII atext: no leading, trailing or doubled dots.
fn is_dot_atom(local: &str) -> bool {
    const ATEXT_SPECIALS: &str = "!#$%&'*+/=?^_`{|}~-";
    !local.is_empty()
        && local.len() <= MAX_LOCAL_BYTES
        && local.split('.').all(|atom| {
            !atom.is_empty()
                && atom
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ATEXT_SPECIALS.contains(c))
        })
}

/// Two or more labels, the top-level one ending with a letter, as every delegated TLD
/// does in its ASCII form (so no all-digit TLD either).
///
/// The label syntax itself (letters, digits and hyphens, 1 to 63 bytes, no hyphen at
/// either end, no empty label) was already checked by `idna::domain_to_ascii_strict`:
/// UTS #46 processing with UseSTD3ASCIIRules, CheckHyphens and VerifyDnsLength.
fn is_host_name(ascii_domain: &str) -> bool {
    let mut labels = ascii_domain.split('.');
    let tld_ok = labels
        .next_back()
        .is_some_and(|tld| tld.ends_with(|c: char| c.is_ascii_alphabetic()));
    tld_ok && labels.next().is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_addresses() {
        let cases = [
            ("kari@example.org", "kari@example.org", "plain"),
            (
                "  kari@example.org ",
                "kari@example.org",
                "surrounding spaces trimmed",
            ),
            (
                "Kari.Nordmann@Example.ORG",
                "Kari.Nordmann@example.org",
                "domain lower-cased, local kept",
            ),
            (
                "first+tag@sub.example.co.uk",
                "first+tag@sub.example.co.uk",
                "plus tag, many labels",
            ),
            ("o'brien@example.ie", "o'brien@example.ie", "apostrophe"),
            ("user@bücher.de", "user@bücher.de", "IDN in Unicode"),
            (
                "user@xn--bcher-kva.de",
                "user@bücher.de",
                "IDN in punycode, stored as Unicode",
            ),
            ("x@a.io", "x@a.io", "short"),
            (
                "user@пример.рф",
                "user@пример.рф",
                "Cyrillic domain and TLD",
            ),
        ];
        for (raw, stored, reason) in cases {
            let email = MemberEmail::parse(raw).unwrap_or_else(|e| panic!("{reason}: {e:?}"));
            assert_eq!(email.to_string(), stored, "{reason}");
        }
        assert_eq!(
            MemberEmail::parse("user@bücher.de").unwrap().to_ascii(),
            "user@xn--bcher-kva.de"
        );
    }

    #[test]
    fn refused_addresses() {
        let long_local = format!("{}@example.org", "a".repeat(65));
        let long_label = format!("a@{}.org", "b".repeat(64));
        let long_total = format!("a@{}.org", vec!["c".repeat(60); 5].join("."));
        let cases: Vec<(&str, FieldProblem, &str)> = vec![
            ("", FieldProblem::Required, "empty"),
            ("kari", FieldProblem::InvalidEmail, "no @"),
            (".x@example.org", FieldProblem::InvalidEmail, "leading dot"),
            ("x.@example.org", FieldProblem::InvalidEmail, "trailing dot"),
            ("a..b@example.org", FieldProblem::InvalidEmail, "double dot"),
            (
                "\"quoted\"@example.org",
                FieldProblem::InvalidEmail,
                "quoted string",
            ),
            (
                "a(comment)@example.org",
                FieldProblem::InvalidEmail,
                "comment",
            ),
            ("a@[127.0.0.1]", FieldProblem::InvalidEmail, "IP literal"),
            ("a@localhost", FieldProblem::InvalidEmail, "single label"),
            ("a@example.123", FieldProblem::InvalidEmail, "numeric TLD"),
            (
                "a@example.tld-2",
                FieldProblem::InvalidEmail,
                "TLD ending with a digit",
            ),
            (
                "a@-example.org",
                FieldProblem::InvalidEmail,
                "label starts with hyphen",
            ),
            (
                "a@example-.org",
                FieldProblem::InvalidEmail,
                "label ends with hyphen",
            ),
            (
                "a@exa_mple.org",
                FieldProblem::InvalidEmail,
                "underscore in domain",
            ),
            (
                "a@example.org.",
                FieldProblem::InvalidEmail,
                "trailing dot in domain",
            ),
            ("a@example..org", FieldProblem::InvalidEmail, "empty label"),
            (
                "a b@example.org",
                FieldProblem::InvalidEmail,
                "space in local part",
            ),
            ("a@b@example.org", FieldProblem::InvalidEmail, "two @"),
            (
                "kari@example.org\r\nBcc: x@evil.test",
                FieldProblem::InvalidEmail,
                "header injection",
            ),
            (
                "jøran@example.org",
                FieldProblem::InvalidEmail,
                "non-ASCII local part",
            ),
            (
                &long_local,
                FieldProblem::InvalidEmail,
                "local part over 64",
            ),
            (&long_label, FieldProblem::InvalidEmail, "label over 63"),
            (&long_total, FieldProblem::InvalidEmail, "address over 254"),
        ];
        for (raw, problem, reason) in cases {
            assert_eq!(MemberEmail::parse(raw), Err(problem), "{reason}: {raw}");
        }
    }

    #[test]
    fn the_254_byte_limit_applies_to_the_address_as_typed() {
        // An IDN domain is shorter in punycode than as typed, where each "ü" is two
        // bytes: 3 + 1 + (4 * 61 + 3) + 3 = 254 bytes typed.
        let label = format!("b{}", "ü".repeat(30));
        assert_eq!(label.len(), 61);
        let domain = format!("{label}.{label}.{label}.{label}.de");
        let fits = format!("kar@{domain}");
        assert_eq!(fits.len(), 254);
        // Its ASCII form is well within the limit, so only the limit on what was typed
        // can refuse one byte more.
        let ascii = idna::domain_to_ascii_strict(&domain).unwrap();
        assert!(5 + ascii.len() < 254, "{}", ascii.len());
        assert!(MemberEmail::parse(&fits).is_ok());
        let over = format!("kari@{domain}");
        assert_eq!(over.len(), 255);
        assert_eq!(MemberEmail::parse(&over), Err(FieldProblem::InvalidEmail));
    }

    #[test]
    fn the_254_byte_limit_applies_to_the_address_in_ascii_too() {
        // "äöü" is 6 bytes typed but 10 in punycode, so an address can fit as typed and
        // still be too long for SMTP (RFC 5321 §4.5.3.1.3) once its domain is ASCII.
        let domain = format!("{}de", "äöü.".repeat(22));
        let ascii = idna::domain_to_ascii_strict(&domain).unwrap();
        let local_at_limit = 254 - 1 - ascii.len();
        assert!((1..64).contains(&local_at_limit), "{local_at_limit}");
        let fits = format!("{}@{domain}", "k".repeat(local_at_limit));
        assert!(fits.len() < 200, "short as typed: {}", fits.len());
        assert_eq!(MemberEmail::parse(&fits).unwrap().to_ascii().len(), 254);
        let over = format!("{}@{domain}", "k".repeat(local_at_limit + 1));
        assert_eq!(MemberEmail::parse(&over), Err(FieldProblem::InvalidEmail));
    }

    #[test]
    fn the_key_is_lower_case_with_the_domain_in_unicode() {
        let cases = [
            ("Kari.Nordmann@Example.ORG", "kari.nordmann@example.org"),
            ("Kari@XN--BCHER-KVA.de", "kari@bücher.de"),
            ("kari@Bücher.DE", "kari@bücher.de"),
        ];
        for (raw, key) in cases {
            assert_eq!(MemberEmail::parse(raw).unwrap().key(), key, "{raw}");
        }
    }
}
