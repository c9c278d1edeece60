//! Files and folders only their owner can read: the database, the keys, exports and
//! mail files hold personal data or secrets.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What to do when the file exists already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Fail with `ErrorKind::AlreadyExists`: never overwrite (a key).
    Refuse,
    /// Empty it and write anew (an export file named again).
    Truncate,
}

/// Opens `path` for writing, created with mode 0600 on Unix (never widened by the
/// umask). A file that exists already ([`Existing::Truncate`]) is narrowed to 0600
/// before anything is written to it, and a symbolic link is refused rather than
/// followed: what is written must land in the file named, readable by its owner only.
///
/// # Errors
/// What opening fails with: `AlreadyExists` under [`Existing::Refuse`]; for a symbolic
/// link, `InvalidInput` saying so.
pub fn create(path: &Path, existing: Existing) -> std::io::Result<File> {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "is a symbolic link: name the file itself",
        ));
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    match existing {
        Existing::Refuse => options.create_new(true),
        Existing::Truncate => options.create(true).truncate(true),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
        // A link put in place after the check above still fails (ELOOP).
        #[allow(clippy::cast_possible_wrap)]
        options.custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32);
    }
    let file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(file)
}

/// What marks a temporary file of joinform's: `.NAME` + this + the process id.
const PARTIAL_MARK: &str = ".joinform-partial-";

/// Where a file to be put at `path` is written until it is complete: a hidden
/// `.NAME.joinform-partial-PID` in the same folder (so the rename that puts it in
/// place is atomic), named by the process, so that a leftover tells which run left it
/// and [`remove_stale_partials`] knows it for joinform's.
pub fn partial_path(path: &Path) -> PathBuf {
    let name = path.file_name().map_or_else(
        || "partial".into(),
        |name| name.to_string_lossy().into_owned(),
    );
    path.with_file_name(format!(".{name}{PARTIAL_MARK}{}", std::process::id()))
}

/// The process id in `name` when it is a temporary file of joinform's
/// ([`partial_path`]), or one SQLite made beside it (`-journal`, `-wal`, `-shm`):
/// hidden, the mark, then digits only up to the optional suffix.
fn partial_pid(name: &str) -> Option<u32> {
    if !name.starts_with('.') {
        return None;
    }
    let (_, rest) = name.rsplit_once(PARTIAL_MARK)?;
    let digits = ["-journal", "-wal", "-shm"]
        .iter()
        .find_map(|suffix| rest.strip_suffix(suffix))
        .unwrap_or(rest);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Removes from `folder` every temporary file of joinform's ([`partial_path`], and
/// SQLite's companions of it) whose process is gone: each is what an interrupted
/// backup, restore or export (a kill, a power cut) left, a copy of everyone, possibly
/// decrypted. Returns what it removed, sorted. A file of a process still running
/// (another run under way) is left alone; where whether a process runs cannot be told
/// (no `/proc`), nothing is removed.
pub fn remove_stale_partials(folder: &Path) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    if !Path::new("/proc/self").exists() {
        return removed;
    }
    let folder = if folder.as_os_str().is_empty() {
        Path::new(".")
    } else {
        folder
    };
    let Ok(entries) = std::fs::read_dir(folder) else {
        return removed;
    };
    for entry in entries.flatten() {
        let Some(pid) = partial_pid(&entry.file_name().to_string_lossy()) else {
            continue;
        };
        if pid == std::process::id() || Path::new("/proc").join(pid.to_string()).exists() {
            continue;
        }
        let stale = entry.path();
        if entry.file_type().is_ok_and(|kind| kind.is_file())
            && std::fs::remove_file(&stale).is_ok()
        {
            removed.push(stale);
        }
    }
    removed.sort();
    removed
}

/// Writes `contents` to a new owner-only file at `path` ([`create`] with
/// [`Existing::Refuse`]) and syncs it to disk.
///
/// # Errors
/// What creating, writing or syncing fails with; `AlreadyExists` when `path` exists.
pub fn write_new(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut file = create(path, Existing::Refuse)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Renames the synced file `partial` to `path` (in the same folder) and syncs the
/// folder, so that the rename itself survives a power cut.
///
/// # Errors
/// What the rename, or opening and syncing the folder, fails with.
pub fn place(partial: &Path, path: &Path) -> std::io::Result<()> {
    std::fs::rename(partial, path)?;
    let folder = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    File::open(folder)?.sync_all()
}

/// Takes the group's and others' permissions off `path` if it has any, with a warning
/// in the log. Before joinform set its umask (see `main`), its database files and mail
/// folder were created under the inherited one, usually readable by every account.
/// Failing (the file belongs to another account) is logged, not fatal: the warning says
/// what to fix, and refusing to start would not protect the data. A path that cannot be
/// read is left to whatever opens it next to report.
#[cfg(unix)]
pub fn restrict(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(metadata) = std::fs::metadata(path) else {
        return;
    };
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 == 0 {
        return;
    }
    let was = format!("{mode:o}");
    match std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700)) {
        Ok(()) => tracing::warn!(
            path = %path.display(), was,
            "was readable by other accounts; made readable by its owner only"
        ),
        Err(error) => tracing::warn!(
            path = %path.display(), was, %error,
            "is readable by other accounts and could not be changed; run `chmod go= PATH`"
        ),
    }
}

/// Elsewhere there are no Unix modes: access follows the ACLs of the folder.
#[cfg(not(unix))]
pub fn restrict(_path: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_joinforms_own_temporary_names_are_taken_for_partials() {
        assert_eq!(partial_pid(".b.db.joinform-partial-42"), Some(42));
        assert_eq!(partial_pid(".b.db.joinform-partial-42-journal"), Some(42));
        assert_eq!(partial_pid(".a.replaced-x.joinform-partial-7-wal"), Some(7));
        for theirs in [
            "b.db.joinform-partial-42",
            ".b.db.partial-42",
            ".b.db.joinform-partial-",
            ".b.db.joinform-partial-42.txt",
            ".b.db.joinform-partial-4x2",
        ] {
            assert_eq!(partial_pid(theirs), None, "{theirs}");
        }
        let path = partial_path(Path::new("/x/b.db"));
        let name = path.file_name().unwrap().to_str().unwrap();
        assert_eq!(partial_pid(name), Some(std::process::id()));
    }
}
