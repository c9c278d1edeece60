//! Email parsing against a public test corpus (isemail, python-email-validator),
//! classified for our rules: see the header of tests/data/email_corpus.tsv.

use joinform::domain::MemberEmail;

const CORPUS: &str = include_str!("../data/email_corpus.tsv");

/// Undoes the file's two escapes: `\\` and `\xHH`.
fn unescape(field: &str) -> String {
    let mut out = String::new();
    let mut chars = field.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                let code = u32::from_str_radix(&hex, 16).expect("two hex digits");
                out.push(char::from_u32(code).expect("a control character"));
            }
            other => panic!("unknown escape \\{other:?} in {field:?}"),
        }
    }
    out
}

#[test]
fn every_corpus_error_is_refused_and_every_plainly_valid_address_accepted() {
    let mut failures = Vec::new();
    let mut counts = (0, 0);
    for line in CORPUS
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let mut fields = line.splitn(3, '\t');
        let expect = fields.next().unwrap();
        let address = unescape(fields.next().expect("an address column"));
        let note = fields.next().unwrap_or_default();
        let accepted = MemberEmail::parse(&address).is_ok();
        match expect {
            "valid" => counts.0 += 1,
            "invalid" => counts.1 += 1,
            other => panic!("unknown expectation {other}"),
        }
        if accepted != (expect == "valid") {
            failures.push(format!("expected {expect}: {address:?} ({note})"));
        }
    }
    assert!(
        counts.0 > 50 && counts.1 > 300,
        "the corpus is loaded: {counts:?}"
    );
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
