//! The module map in docs/architecture.md is the law of dependencies: each top-level
//! module of `src/` may use the modules its line names, and nothing else.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module → the modules it may use; `None` for a module that may use any (`*`).
type Map = BTreeMap<String, Option<BTreeSet<String>>>;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The fenced block after the "## Module map" heading: `name -> dep dep ...` lines.
fn module_map(architecture: &str) -> Map {
    let section = architecture
        .split_once("## Module map")
        .expect("docs/architecture.md has a \"## Module map\" section")
        .1;
    let block = section
        .split_once("```text\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .expect("the module map is a ```text block")
        .0;
    block
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let (name, deps) = line
                .split_once("->")
                .unwrap_or_else(|| panic!("a map line is `name -> deps`: {line:?}"));
            let deps: Vec<&str> = deps.split_whitespace().collect();
            let allowed = if deps == ["*"] {
                None
            } else {
                Some(deps.into_iter().map(str::to_owned).collect())
            };
            (name.trim().to_owned(), allowed)
        })
        .collect()
}

/// The top-level modules `src/lib.rs` declares.
fn declared_modules(lib: &str) -> BTreeSet<String> {
    lib.lines()
        .filter_map(|line| {
            let line = line.trim();
            let rest = line
                .strip_prefix("pub mod ")
                .or_else(|| line.strip_prefix("mod "))?;
            Some(rest.trim_end_matches(';').to_owned())
        })
        .collect()
}

/// The first segment after each `crate::` (or a `super::` chain that reaches the crate
/// root) in `source`, which sits `depth` modules below the root. In `crate::{a::X, b}`
/// both `a` and `b` count. A line that opens an inline module (`mod tests {`) puts the
/// rest of the file one level deeper, which is where test modules sit.
fn crate_paths(source: &str, depth: usize) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut depth = depth;
    for (number, line) in source.lines().enumerate() {
        let trimmed = line.trim_start();
        let opens_module = (trimmed.starts_with("mod ") || trimmed.starts_with("pub mod "))
            && trimmed.trim_end().ends_with('{');
        let mut rest = line;
        while let Some(at) = rest.find(['c', 's']) {
            let tail = &rest[at..];
            let before = line[..line.len() - rest.len() + at].chars().next_back();
            let starts_word = !before.is_some_and(|c| c.is_alphanumeric() || c == '_');
            let (reaches_root, after) = if let Some(after) = tail.strip_prefix("crate::") {
                (true, after)
            } else if tail.starts_with("super::") {
                let mut supers = 0;
                let mut after = tail;
                while let Some(next) = after.strip_prefix("super::") {
                    supers += 1;
                    after = next;
                }
                (supers >= depth, after)
            } else {
                rest = &rest[at + 1..];
                continue;
            };
            if starts_word && reaches_root {
                for segment in first_segments(after) {
                    found.push((number + 1, segment));
                }
            }
            rest = &tail[1..];
        }
        if opens_module {
            depth += 1;
        }
    }
    found
}

/// `a::b` → `[a]`; `{a::b, c, d::{e, f}}` → `[a, c, d]`.
fn first_segments(path: &str) -> Vec<String> {
    let ident = |text: &str| -> String {
        text.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let Some(group) = path.strip_prefix('{') else {
        return vec![ident(path)];
    };
    let mut segments = Vec::new();
    let mut level = 0;
    let mut start = true;
    for (index, c) in group.char_indices() {
        match c {
            '{' => level += 1,
            '}' if level == 0 => break,
            '}' => level -= 1,
            ',' if level == 0 => start = true,
            _ if start && !c.is_whitespace() => {
                segments.push(ident(&group[index..]));
                start = false;
            }
            _ => {}
        }
    }
    segments
}

/// Every `.rs` file under `src/` but the crate roots, with its top-level module and
/// how many modules deep the file's own module is.
fn module_files() -> Vec<(PathBuf, String, usize)> {
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, files);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                files.push(path);
            }
        }
    }
    let src = root().join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    files.sort();
    files
        .into_iter()
        .filter_map(|path| {
            let relative = path.strip_prefix(&src).unwrap().to_owned();
            let parts: Vec<String> = relative
                .iter()
                .map(|part| part.to_string_lossy().trim_end_matches(".rs").to_owned())
                .collect();
            if parts.len() == 1 && (parts[0] == "lib" || parts[0] == "main") {
                return None;
            }
            let depth = parts.len() - usize::from(parts.last().is_some_and(|p| p == "mod"));
            Some((path, parts[0].clone(), depth))
        })
        .collect()
}

#[test]
fn modules_use_only_what_the_map_allows() {
    let map = module_map(&std::fs::read_to_string(root().join("docs/architecture.md")).unwrap());
    let declared = declared_modules(&std::fs::read_to_string(root().join("src/lib.rs")).unwrap());
    let mapped: BTreeSet<String> = map.keys().cloned().collect();
    assert_eq!(
        mapped, declared,
        "the module map names exactly the modules src/lib.rs declares"
    );
    let mut offences = Vec::new();
    for (path, module, depth) in module_files() {
        let source = std::fs::read_to_string(&path).unwrap();
        let Some(Some(allowed)) = map.get(&module) else {
            continue;
        };
        for (line, used) in crate_paths(&source, depth) {
            if used != module && declared.contains(&used) && !allowed.contains(&used) {
                offences.push(format!(
                    "{}:{line}: `{module}` uses `{used}`",
                    path.strip_prefix(root()).unwrap().display()
                ));
            }
        }
    }
    assert!(
        offences.is_empty(),
        "uses against the module map in docs/architecture.md:\n{}",
        offences.join("\n")
    );
}

#[test]
fn the_scanner_sees_every_form_of_a_path_into_the_crate() {
    let source = "use crate::store::Database;\n\
                  use crate::{domain::{A, B}, spam};\n\
                  let x = crate::metrics::count();\n\
                  use super::writer;\n\
                  /// [`crate::config::Settings`]\n\
                  fn supercrate::x() {}\n\
                  mod tests {\n\
                  use super::*;\n\
                  use super::super::http;\n\
                  }\n";
    let found: Vec<(usize, String)> = crate_paths(source, 2);
    let names: Vec<&str> = found.iter().map(|(_, name)| name.as_str()).collect();
    // `super::writer` stays inside the file's own module; inside `mod tests`, two
    // `super`s from three levels down do not reach the root either.
    assert_eq!(names, ["store", "domain", "spam", "metrics", "config"]);
    assert_eq!(
        crate_paths("use super::super::http;\nuse super::store;", 2)
            .into_iter()
            .map(|(_, name)| name)
            .collect::<Vec<_>>(),
        ["http"]
    );
    assert_eq!(
        module_map("## Module map\n\n```text\na ->\nb -> a\nc -> *\n```\n")
            .into_iter()
            .collect::<Vec<_>>(),
        [
            ("a".to_owned(), Some(BTreeSet::new())),
            ("b".to_owned(), Some(BTreeSet::from(["a".to_owned()]))),
            ("c".to_owned(), None),
        ]
    );
}
