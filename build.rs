//! Embeds every notification template under templates/mail/, so that adding a language
//! is adding one file.

// A build script that cannot read its inputs should stop the build with the reason.
#![allow(clippy::expect_used)]

use std::fmt::Write;
use std::path::Path;

fn main() {
    let folder = Path::new("templates/mail");
    println!("cargo::rerun-if-changed={}", folder.display());
    let mut entries: Vec<(String, String)> = std::fs::read_dir(folder)
        .expect("templates/mail exists")
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
    let mut code = String::from("/// (language tag, template text), sorted by tag.\n");
    code.push_str("pub static MAIL_TEMPLATES: &[(&str, &str)] = &[\n");
    for (language, path) in entries {
        let _ = writeln!(code, "    ({language:?}, include_str!({path:?})),");
    }
    code.push_str("];\n");
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    std::fs::write(Path::new(&out).join("mail_templates.rs"), code).expect("OUT_DIR is writable");
}
