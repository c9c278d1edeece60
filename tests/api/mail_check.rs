//! Every mail the tests produce is checked against the standards here, not in each
//! test: the SMTP test server checks each message it accepts (`smtp.rs`) and
//! `TestApp::stop` checks each `.eml` file the file transport wrote (`helpers.rs`).
//!
//! Two independent readers look at each message:
//! - our own checks of what RFC 5322 and RFC 2045 require (header syntax, the
//!   headers every message needs and how often each may appear, `MIME-Version: 1.0`,
//!   a body that matches its `Content-Transfer-Encoding`), with `mail-parser` reading
//!   the values;
//! - Python's `email` package with `policy.strict`, which raises on every defect it
//!   knows. It needs `python3`; without it the check says loudly that it was skipped
//!   (and fails under `CI=true`).

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use mail_parser::{MessageParser, MimeHeaders};

/// Headers a message has at most once (RFC 5322 §3.6, RFC 2045 §4 and §5–6).
const AT_MOST_ONCE: [&str; 13] = [
    "date",
    "from",
    "sender",
    "reply-to",
    "to",
    "cc",
    "bcc",
    "message-id",
    "in-reply-to",
    "references",
    "subject",
    "content-type",
    "content-transfer-encoding",
];

/// Headers every notification must have exactly once: RFC 5322 §3.6 requires Date
/// and From and asks for Message-ID; RFC 2045 §4 requires MIME-Version of a message
/// with MIME headers; an organiser needs a Subject.
const REQUIRED: [&str; 5] = ["date", "from", "message-id", "mime-version", "subject"];

/// Panics with every problem found in `raw`, a whole message as sent or stored.
/// `sender_domain`: the domain of the configured `mail.from`, which the Message-ID
/// must use; `None` when the caller does not know the configuration (the SMTP server),
/// where it must at least be the domain of the message's own From.
pub fn assert_standard_mail(raw: &[u8], sender_domain: Option<&str>, origin: &str) {
    let mut problems = problems(raw, sender_domain);
    problems.extend(python_strict(&[raw.to_vec()]).into_iter().flatten());
    assert!(
        problems.is_empty(),
        "{origin}: the mail is not a well-formed MIME message:\n  {}\n--- message ---\n{}",
        problems.join("\n  "),
        String::from_utf8_lossy(raw)
    );
}

/// Checks every `.eml` file in `dir` (the file transport's folder), with one Python
/// process for all of them.
pub fn assert_standard_mail_files(dir: &std::path::Path, sender_domain: &str) {
    let mut files: Vec<(std::path::PathBuf, Vec<u8>)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect();
    files.sort();
    let raws: Vec<Vec<u8>> = files.iter().map(|(_, raw)| raw.clone()).collect();
    let strict = python_strict(&raws);
    for (index, (path, raw)) in files.iter().enumerate() {
        let mut found = problems(raw, Some(sender_domain));
        if let Some(python) = strict.get(index) {
            found.extend(python.iter().cloned());
        }
        assert!(
            found.is_empty(),
            "{}: the mail is not a well-formed MIME message:\n  {}\n--- message ---\n{}",
            path.display(),
            found.join("\n  "),
            String::from_utf8_lossy(raw)
        );
    }
}

/// Everything our own reading finds wrong with `raw`.
pub fn problems(raw: &[u8], sender_domain: Option<&str>) -> Vec<String> {
    let mut problems = Vec::new();
    let mut say = |problem: String| problems.push(problem);

    // RFC 5322 §2.1 / §2.3: lines end in CRLF; CR and LF never appear alone.
    for (index, byte) in raw.iter().enumerate() {
        let bare_lf = *byte == b'\n' && (index == 0 || raw[index - 1] != b'\r');
        let bare_cr = *byte == b'\r' && raw.get(index + 1) != Some(&b'\n');
        if bare_lf || bare_cr {
            say(format!("a bare CR or LF at byte {index}"));
            break;
        }
    }
    let text = String::from_utf8_lossy(raw);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        say("no empty line between the header and the body".into());
        return problems;
    };

    // RFC 5322 §2.2 and §3.6.8: header lines are US-ASCII (non-ASCII text only as
    // RFC 2047 encoded words), at most 998 characters; a field name is printable
    // ASCII without a colon; a continuation line starts with white space.
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n") {
        if !line.is_ascii() {
            say(format!("a header line that is not ASCII: {line:?}"));
        }
        if line.len() > 998 {
            say(format!("a header line of {} characters", line.len()));
        }
        if line.starts_with([' ', '\t']) {
            match fields.last_mut() {
                Some((_, value)) => value.push_str(line),
                None => say("the header starts with a continuation line".into()),
            }
            continue;
        }
        match line.split_once(':') {
            Some((name, value))
                if !name.is_empty() && name.bytes().all(|b| (33..=126).contains(&b)) =>
            {
                fields.push((name.to_ascii_lowercase(), value.trim().to_owned()));
            }
            _ => say(format!("not a header field: {line:?}")),
        }
    }
    let values = |name: &str| -> Vec<&str> {
        fields
            .iter()
            .filter(|(field, _)| field == name)
            .map(|(_, value)| value.as_str())
            .collect()
    };
    for name in REQUIRED {
        if values(name).is_empty() {
            say(format!("no {name} header"));
        }
    }
    for name in AT_MOST_ONCE.iter().chain(&["mime-version"]) {
        let count = values(name).len();
        if count > 1 {
            say(format!("{count} {name} headers"));
        }
    }
    if let Some(version) = values("mime-version").first()
        && *version != "1.0"
    {
        say(format!("MIME-Version is `{version}`, not 1.0"));
    }
    if values("content-type").is_empty() {
        say("no Content-Type header".into());
    }

    let Some(message) = MessageParser::default().parse(raw) else {
        say("mail-parser cannot read it".into());
        return problems;
    };
    if message.date().is_none_or(|date| !date.is_valid()) {
        say("the Date does not parse as an RFC 5322 date".into());
    }
    let from: Vec<String> = message
        .from()
        .map(|from| {
            from.iter()
                .filter_map(|a| a.address())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if from.len() != 1 {
        say(format!("From holds {} addresses, not one", from.len()));
    }
    let from_domain = from
        .first()
        .and_then(|address| address.rsplit_once('@'))
        .map(|(_, domain)| domain.to_ascii_lowercase());
    if let (Some(expected), Some(actual)) = (sender_domain, &from_domain)
        && !expected.eq_ignore_ascii_case(actual)
    {
        say(format!(
            "From is of {actual}, not of the configured {expected}"
        ));
    }
    // RFC 5322 §3.6.4: msg-id = "<" id-left "@" id-right ">"; ours names our domain.
    if let Some(id) = values("message-id").first() {
        match id
            .strip_prefix('<')
            .and_then(|id| id.strip_suffix('>'))
            .and_then(|id| id.split_once('@'))
        {
            Some((left, right)) if !left.is_empty() && !left.contains(['<', '>', '@', ' ']) => {
                let expected = sender_domain.map(str::to_owned).or(from_domain.clone());
                if expected.is_none_or(|domain| !domain.eq_ignore_ascii_case(right)) {
                    say(format!(
                        "the Message-ID's domain is {right}, not the sender's {}",
                        sender_domain.or(from_domain.as_deref()).unwrap_or("(none)")
                    ));
                }
            }
            _ => say(format!("the Message-ID `{id}` is not <left@domain>")),
        }
    }
    match message.subject() {
        Some(subject) if !subject.trim().is_empty() => {}
        _ => say("the Subject is empty or cannot be decoded".into()),
    }

    // RFC 2045 §6: the body is what its Content-Transfer-Encoding says.
    let encoding = values("content-transfer-encoding")
        .first()
        .map_or("7bit".to_owned(), |e| e.to_ascii_lowercase());
    let lines: Vec<&str> = body.split("\r\n").collect();
    match encoding.as_str() {
        "7bit" => {
            if !body.is_ascii() || lines.iter().any(|line| line.len() > 998) {
                say("a 7bit body with 8-bit bytes or a line over 998 characters".into());
            }
        }
        "quoted-printable" => {
            // RFC 2045 §6.7: ASCII, lines of at most 76 characters, `=` only before
            // two hex digits or a line break.
            let bad_escape = lines.iter().any(|line| {
                let bytes = line.as_bytes();
                bytes.iter().enumerate().any(|(index, byte)| {
                    *byte == b'='
                        && index + 1 != bytes.len()
                        && !(bytes.get(index + 1).is_some_and(u8::is_ascii_hexdigit)
                            && bytes.get(index + 2).is_some_and(u8::is_ascii_hexdigit))
                })
            });
            if !body.is_ascii() || lines.iter().any(|line| line.len() > 76) || bad_escape {
                say("a quoted-printable body that breaks RFC 2045 §6.7".into());
            }
        }
        "base64" => {
            let alphabet = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=');
            if lines
                .iter()
                .any(|line| line.len() > 76 || !line.chars().all(alphabet))
            {
                say("a base64 body that breaks RFC 2045 §6.8".into());
            }
        }
        other => say(format!("the Content-Transfer-Encoding `{other}`")),
    }
    if is_pgp_mime(&message) {
        // RFC 3156 §4: exactly two parts, `application/pgp-encrypted` saying
        // `Version: 1`, then `application/octet-stream` holding the armoured message.
        let parts: Vec<_> = message.parts.iter().skip(1).collect();
        let control = parts
            .first()
            .map(|part| String::from_utf8_lossy(part.contents()));
        let data = parts
            .get(1)
            .map(|part| String::from_utf8_lossy(part.contents()));
        if parts.len() != 2
            || control.is_none_or(|text| text.trim() != "Version: 1")
            || data.is_none_or(|text| !text.trim_start().starts_with("-----BEGIN PGP MESSAGE-----"))
        {
            say("a multipart/encrypted body that breaks RFC 3156 §4".into());
        }
    } else if message.body_text(0).is_none() {
        say("no text body".into());
    }
    problems
}

/// Whether `message` is PGP/MIME (`multipart/encrypted` with
/// `protocol="application/pgp-encrypted"`), whose text is inside the ciphertext.
fn is_pgp_mime(message: &mail_parser::Message<'_>) -> bool {
    message.content_type().is_some_and(|content_type| {
        content_type.ctype().eq_ignore_ascii_case("multipart")
            && content_type
                .subtype()
                .is_some_and(|subtype| subtype.eq_ignore_ascii_case("encrypted"))
            && content_type
                .attribute("protocol")
                .is_some_and(|protocol| protocol.eq_ignore_ascii_case("application/pgp-encrypted"))
    })
}

/// Python's verdict on each of `raws`, in order: the defects `email` finds with
/// `policy.strict`. Empty lists when python3 is missing (and the skip is announced).
fn python_strict(raws: &[Vec<u8>]) -> Vec<Vec<String>> {
    if raws.is_empty() || !python_available() {
        return vec![Vec::new(); raws.len()];
    }
    // Messages on standard input, each preceded by its length on a line of its own.
    let mut input = Vec::new();
    for raw in raws {
        input.extend_from_slice(format!("{}\n", raw.len()).as_bytes());
        input.extend_from_slice(raw);
    }
    let mut child = Command::new("python3")
        .args(["-c", PYTHON_CHECK])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        output.status.success(),
        "the Python mail check failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let verdicts: Vec<Vec<String>> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(verdicts.len(), raws.len());
    verdicts
        .into_iter()
        .map(|found| {
            found
                .into_iter()
                .map(|p| format!("python email: {p}"))
                .collect()
        })
        .collect()
}

/// Reads length-prefixed messages from standard input and prints, as JSON, each one's
/// defects under `policy.strict` (which raises on the first defect of the parse).
const PYTHON_CHECK: &str = r#"
import email, email.policy, json, sys
data = sys.stdin.buffer
verdicts = []
while True:
    line = data.readline()
    if not line:
        break
    raw = data.read(int(line))
    found = []
    try:
        message = email.message_from_bytes(raw, policy=email.policy.strict)
        for part in message.walk():
            found += [repr(d) for d in part.defects]
            for name, value in part.items():
                found += [name + ": " + repr(d) for d in getattr(value, "defects", ())]
            if not part.is_multipart():
                part.get_content()
        if str(message.get("MIME-Version", "")) != "1.0":
            found.append("MIME-Version is not 1.0")
        for name in ("Date", "Message-ID", "From", "Subject"):
            if message.get(name) is None:
                found.append("no " + name)
    except Exception as error:
        found.append(type(error).__name__ + ": " + str(error))
    verdicts.append(found)
json.dump(verdicts, sys.stdout)
"#;

/// Whether python3 can run the strict check; says loudly when it cannot, and fails
/// under `CI=true`, where a skipped check would look like a passed one.
fn python_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        let found = Command::new("python3")
            .args(["-c", "import email.policy"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !found {
            let message = "SKIPPED: the strict Python check of every test mail needs python3 \
                           (apt-get install python3); only joinform's own checks ran";
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{message}, and CI=true forbids skipping it"
            );
            eprintln!("\n*** {message} ***\n");
        }
        found
    })
}

#[test]
fn the_check_finds_what_a_bare_lettre_body_and_other_faults_lack() {
    // What joinform sent before: MIME headers without MIME-Version.
    let without_version = b"From: joinform <joinform@example.org>\r\n\
        Reply-To: Kari <kari@example.org>\r\n\
        Subject: =?utf-8?b?Tnkgw6U=?=\r\n\
        Message-ID: <1@example.org>\r\n\
        Content-Type: text/plain; charset=utf-8\r\n\
        Content-Transfer-Encoding: 7bit\r\n\
        Date: Tue, 01 Jul 2025 10:00:00 +0000\r\n\
        To: oslo@example.org\r\n\r\nHello\r\n";
    let found = problems(without_version, Some("example.org"));
    assert_eq!(found, ["no mime-version header"], "{found:?}");
    let python = python_strict(&[without_version.to_vec()]);
    if python_available() {
        assert!(
            python[0].iter().any(|p| p.contains("MIME-Version")),
            "{python:?}"
        );
    }

    let with = |from: &[u8], to: &[u8]| -> Vec<u8> {
        let text = String::from_utf8_lossy(without_version)
            .replace("Content-Type:", "MIME-Version: 1.0\r\nContent-Type:");
        let mut out = text.into_bytes();
        if from.is_empty() {
            return out;
        }
        let at = out.windows(from.len()).position(|w| w == from).unwrap();
        out.splice(at..at + from.len(), to.iter().copied());
        out
    };
    assert!(problems(&with(b"", b""), Some("example.org")).is_empty());
    for (from, to, problem) in [
        (
            &b"<1@example.org>"[..],
            &b"<1@host.invalid>"[..],
            "Message-ID's domain",
        ),
        (b"=?utf-8?b?Tnkgw6U=?=", "Ny \u{e5}".as_bytes(), "not ASCII"),
        (b"Hello\r\n", b"Hello\n", "bare CR or LF"),
        (b"Date: Tue, 01 Jul 2025 10:00:00 +0000\r\n", b"", "no date"),
        (b"Hello", "H\u{e9}llo".as_bytes(), "7bit body"),
        (
            b"To: oslo",
            b"To: a@example.org\r\nTo: oslo",
            "2 to headers",
        ),
    ] {
        let found = problems(&with(from, to), Some("example.org"));
        assert!(
            found.iter().any(|p| p.contains(problem)),
            "{problem}: {found:?}"
        );
    }
}
