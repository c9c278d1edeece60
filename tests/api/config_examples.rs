//! The configuration accepts what its documentation shows: every example in a comment
//! of `config/joinform.toml` and every ```toml block of README.md, loaded by the real
//! `joinform check-config` on top of the shipped file, as an operator would paste it.

use crate::process::Joinform;

const SHIPPED: &str = include_str!("../../config/joinform.toml");
const README: &str = include_str!("../../README.md");

/// One documented example: where it is, and the TOML it amounts to.
#[derive(Debug)]
struct Example {
    origin: String,
    toml: String,
}

/// `key = value` examples from the comments of a TOML file, each under the table the
/// comment sits in (the last `[table]` line above it). A comment line that names a
/// table (`[[admin.tokens]]`) starts a block of the key lines under it. A value that
/// spans lines (`extra_fields = [` ... `]`) takes comment lines until it parses; a
/// line that neither parses nor opens such a value is prose.
fn comment_examples(file: &str, name: &str) -> Vec<Example> {
    let lines: Vec<&str> = file.lines().collect();
    let key_line = regex::Regex::new(r"^[A-Za-z0-9_]+\s*=").unwrap();
    let table_line = regex::Regex::new(r"^\[\[?[A-Za-z0-9_.]+\]\]?$").unwrap();
    // A comment line as code: without `#`, an "Example:" lead-in and spaces.
    let code = |line: &str| -> Option<String> {
        let text = line.trim_start().strip_prefix('#')?.trim();
        let text = text
            .strip_prefix("Example:")
            .or_else(|| text.strip_prefix("e.g."))
            .unwrap_or(text)
            .trim();
        Some(text.to_owned())
    };
    let mut examples = Vec::new();
    let mut table = String::new();
    let mut index = 0;
    while index < lines.len() {
        let line = lines[index];
        let number = index + 1;
        index += 1;
        if table_line.is_match(line.trim()) {
            table = line.trim().to_owned();
            continue;
        }
        let Some(text) = code(line) else { continue };
        if table_line.is_match(&text) {
            let mut block = format!("{text}\n");
            while let Some(next) = lines.get(index).and_then(|l| code(l)) {
                if !key_line.is_match(&next) {
                    break;
                }
                block.push_str(&next);
                block.push('\n');
                index += 1;
            }
            examples.push(Example {
                origin: format!("{name}:{number}"),
                toml: block,
            });
        } else if key_line.is_match(&text) {
            // Prose that happens to start like a key (`require_token = true also marks
            // ...`) neither parses nor opens a value that goes on.
            let opens = text.ends_with('[') || text.ends_with('{');
            if toml::from_str::<toml::Table>(&text).is_err() && !opens {
                continue;
            }
            let mut value = text;
            while toml::from_str::<toml::Table>(&value).is_err() {
                match lines.get(index).and_then(|l| code(l)) {
                    Some(next) if !next.is_empty() && index < number + 20 => {
                        value.push('\n');
                        value.push_str(&next);
                        index += 1;
                    }
                    _ => break,
                }
            }
            examples.push(Example {
                origin: format!("{name}:{number}"),
                toml: format!("{table}\n{value}\n"),
            });
        }
    }
    examples
}

/// Every fenced block marked `toml` in a Markdown file.
fn markdown_toml_blocks(file: &str, name: &str) -> Vec<Example> {
    let mut examples = Vec::new();
    let mut open: Option<(usize, String)> = None;
    for (index, line) in file.lines().enumerate() {
        let fence = line.trim_start();
        match &mut open {
            None if fence.starts_with("```toml") => open = Some((index + 1, String::new())),
            Some((start, block)) if fence.starts_with("```") => {
                examples.push(Example {
                    origin: format!("{name}:{start}"),
                    toml: std::mem::take(block),
                });
                open = None;
            }
            Some((_, block)) => {
                block.push_str(line);
                block.push('\n');
            }
            None => {}
        }
    }
    assert!(open.is_none(), "{name}: a ```toml block is never closed");
    examples
}

/// `base` with `example` laid over it: tables merge key by key, any other value
/// (arrays of tables too) is replaced, as when an operator edits the shipped file.
fn overlay(base: &mut toml::Table, example: toml::Table) {
    for (key, value) in example {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(inner)), toml::Value::Table(value)) => overlay(inner, value),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// `joinform` with the environment `file` expects.
fn command_for(file: &toml::Table) -> Joinform {
    let has_username = file
        .get("mail")
        .and_then(|mail| mail.get("smtp"))
        .and_then(|smtp| smtp.get("username"))
        .is_some();
    if has_username {
        // The documentation says the password goes with the username and comes from
        // this variable, never the file.
        Joinform::new().env("JOINFORM_MAIL__SMTP__PASSWORD", "example-password")
    } else {
        Joinform::new()
    }
}

/// Runs `joinform check-config` on the shipped file with `example` laid over it.
/// `Err` holds what the command said.
fn check(example: &Example) -> Result<(), String> {
    let parsed: toml::Table = toml::from_str(&example.toml)
        .map_err(|error| format!("the example is not TOML: {error}"))?;
    let mut file: toml::Table = toml::from_str(SHIPPED).unwrap();
    overlay(&mut file, parsed);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("joinform.toml");
    std::fs::write(&path, toml::to_string(&file).unwrap()).unwrap();
    // The examples' OpenPGP keys (`keys/norway.asc`, ...), as an operator would have
    // put them beside the file: test keys under the examples' names.
    let keys = dir.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/openpgp");
    for (name, fixture) in [
        ("norway.asc", "norway.asc"),
        ("sweden.asc", "sweden-rsa.asc"),
        ("international.asc", "primary-encrypts.asc"),
        ("operator.asc", "operator.asc"),
    ] {
        std::fs::copy(fixtures.join(fixture), keys.join(name)).unwrap();
    }
    let command = command_for(&file);
    let output = command.arg("check-config").config(&path).output();
    let smtp = file
        .get("mail")
        .and_then(|mail| mail.get("transport"))
        .and_then(toml::Value::as_str)
        == Some("smtp");
    if !smtp || output.status.success() {
        return if output.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        };
    }
    // The examples write example.org for the organisation's own domain, which
    // check-config refuses over SMTP (reserved for examples, RFC 2606), as the README
    // says. The rest must load once the operator has put a domain of theirs there.
    let refusal = String::from_utf8_lossy(&output.stderr).into_owned();
    if !refusal.contains("reserved for examples") {
        return Err(refusal);
    }
    let own = toml::to_string(&file)
        .unwrap()
        .replace("example.org", "members.organisation.no");
    std::fs::write(&path, own).unwrap();
    let output = command_for(&file)
        .arg("check-config")
        .config(&path)
        .output();
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

#[test]
fn every_documented_configuration_example_loads() {
    let from_comments = comment_examples(SHIPPED, "config/joinform.toml");
    let from_readme = markdown_toml_blocks(README, "README.md");
    // Zero found means the extraction broke, not that all is well.
    assert!(
        from_comments.len() >= 5,
        "only {} examples found in the comments of config/joinform.toml: {from_comments:#?}",
        from_comments.len()
    );
    assert!(
        !from_readme.is_empty(),
        "no ```toml block found in README.md"
    );
    for expected in [
        "trusted_proxies",
        "extra_fields",
        "[[admin.tokens]]",
        "blocked_patterns",
    ] {
        assert!(
            from_comments.iter().any(|e| e.toml.contains(expected)),
            "the example of {expected} was not found: {from_comments:#?}"
        );
    }
    let failures: Vec<String> = from_comments
        .iter()
        .chain(&from_readme)
        .filter_map(|example| {
            check(example)
                .err()
                .map(|error| format!("{}:\n{}=> {}", example.origin, example.toml, error.trim()))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "documented examples that do not load:\n\n{}",
        failures.join("\n\n")
    );
}
