//! Embeds every notification template under templates/mail/, every form translation
//! under templates/form/, every follow-up page translation under templates/followup/,
//! and the visitor's pages' and mails' texts under templates/visitor/ and
//! templates/visitor_mail/, so that adding a language is adding one file.

// A build script that cannot read its inputs should stop the build with the reason.
#![allow(clippy::expect_used)]

use std::fmt::Write;
use std::path::Path;

fn main() {
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    embed(
        "templates/mail",
        "MAIL_TEMPLATES",
        &out,
        "mail_templates.rs",
    );
    embed("templates/form", "FORM_TEXTS", &out, "form_texts.rs");
    embed(
        "templates/visitor",
        "VISITOR_TEXTS",
        &out,
        "visitor_texts.rs",
    );
    embed(
        "templates/visitor_mail",
        "VISITOR_MAIL_TEXTS",
        &out,
        "visitor_mail_texts.rs",
    );
    embed(
        "templates/followup",
        "FOLLOWUP_TEXTS",
        &out,
        "followup_texts.rs",
    );
}

/// Writes `OUT_DIR/file` declaring `name`: every `<language>.toml` in `folder`, as
/// (language tag, text) pairs sorted by tag.
fn embed(folder: &str, name: &str, out: &str, file: &str) {
    let folder = Path::new(folder);
    println!("cargo::rerun-if-changed={}", folder.display());
    let mut entries: Vec<(String, String)> = std::fs::read_dir(folder)
        .unwrap_or_else(|error| panic!("{} cannot be read: {error}", folder.display()))
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .filter_map(|path| {
            let language = path.file_stem()?.to_str()?.to_owned();
            let absolute = std::fs::canonicalize(&path).ok()?;
            Some((language, absolute.to_str()?.to_owned()))
        })
        .collect();
    entries.sort();
    let mut code = String::from("/// (language tag, file text), sorted by tag.\n");
    let _ = writeln!(code, "pub static {name}: &[(&str, &str)] = &[");
    for (language, path) in entries {
        let _ = writeln!(code, "    ({language:?}, include_str!({path:?})),");
    }
    code.push_str("];\n");
    std::fs::write(Path::new(out).join(file), code).expect("OUT_DIR is writable");
}
