//! The schema's version lives in `PRAGMA user_version`. A new file gets `schema.sql`
//! whole; an older file is upgraded step by step in one transaction; a newer file is
//! refused. A file that is refused is refused before anything is written to it.

use std::io::Read;
use std::path::{Path, PathBuf};

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::StoreError;

/// The whole schema at [`SCHEMA_VERSION`].
pub const SCHEMA_SQL: &str = include_str!("../../schema.sql");

/// The version `schema.sql` describes.
pub const SCHEMA_VERSION: i64 = 9;

/// `UPGRADES[i]` takes a database from version `i + 1` to `i + 2`. Append only; the
/// last step must leave the schema exactly as `schema.sql` makes it.
const UPGRADES: &[&str] = &[
    // 1 → 2: routing by section and the notification outbox.
    "ALTER TABLE submissions ADD COLUMN section TEXT NOT NULL DEFAULT '';
     CREATE TABLE outbox (
         -- One notification per submission; erasing the submission erases it.
         submission_id   TEXT PRIMARY KEY NOT NULL
                         REFERENCES submissions (id) ON DELETE CASCADE,
         section         TEXT NOT NULL,
         -- Stable across retries, so a receiver can spot a duplicate delivery.
         message_id      TEXT NOT NULL,
         state           TEXT NOT NULL DEFAULT 'pending'
                         CHECK (state IN ('pending', 'sent', 'failed')),
         attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
         created_at      TEXT NOT NULL,
         next_attempt_at TEXT NOT NULL,
         sent_at         TEXT,
         -- Why the last attempt failed: transport and SMTP text, never message content.
         last_error      TEXT
     ) STRICT, WITHOUT ROWID;

     CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE state = 'pending';",
    // 2 → 3: spam defence, consent record, audit trail, incremental exports. Addresses
    // are ASCII dot-atoms at a domain already stored lower-case, so `lower()` gives the
    // key that `MemberEmail::key` computes.
    "ALTER TABLE submissions ADD COLUMN email_key TEXT NOT NULL DEFAULT '';
     ALTER TABLE submissions ADD COLUMN spam_reasons TEXT
         CHECK (spam_reasons IS NULL OR json_valid(spam_reasons));
     ALTER TABLE submissions ADD COLUMN is_returning INTEGER NOT NULL DEFAULT 0
         CHECK (is_returning IN (0, 1));
     ALTER TABLE submissions ADD COLUMN client_hash TEXT;
     ALTER TABLE submissions ADD COLUMN consent_text TEXT;
     ALTER TABLE submissions ADD COLUMN consent_language TEXT;
     UPDATE submissions SET email_key = lower(email);
     DROP INDEX submissions_by_email;
     CREATE INDEX submissions_by_email_key ON submissions (email_key, created_at);

     CREATE TABLE used_tokens (
         nonce       TEXT PRIMARY KEY NOT NULL,
         expires_at  TEXT NOT NULL
     ) STRICT, WITHOUT ROWID;

     CREATE TABLE audit (
         id          INTEGER PRIMARY KEY,
         at          TEXT NOT NULL,
         actor       TEXT NOT NULL,
         action      TEXT NOT NULL CHECK (action IN ('export', 'forget', 'purge')),
         details     TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(details)),
         row_count   INTEGER,
         completed_at TEXT
     ) STRICT;

     CREATE TABLE export_cursors (
         consumer    TEXT PRIMARY KEY NOT NULL,
         last_id     TEXT NOT NULL,
         updated_at  TEXT NOT NULL
     ) STRICT, WITHOUT ROWID;",
    // 3 → 4: a leaner row on the write path (issue 14). `submissions` becomes a WITHOUT
    // ROWID table keyed by its time-ordered id (one B-tree instead of the table and its
    // key's index); the country and time indexes go (exports read in key order); the
    // address index carries the status, so the admission check never reads the rows.
    // The status and state checks are spelt with OR instead of IN (see schema.sql).
    // Neither change can be made in place: SQLite's procedure
    // (https://www.sqlite.org/lang_altertable.html#otheralter) copies each table to a
    // new one and renames that. `migrate` turns foreign keys off meanwhile, or dropping
    // the old `submissions` would delete the outbox by cascade. The new tables are
    // schema.sql's at version 4, columns in the same order.
    "CREATE TABLE submissions_v4 (
         -- Opaque, time-ordered id (UUID v7) shown to the visitor.
         id          TEXT PRIMARY KEY NOT NULL,
         -- RFC 3339 UTC with microseconds, fixed width, so text order is time order.
         created_at  TEXT NOT NULL,
         name        TEXT NOT NULL,
         -- As the visitor typed the local part; domain lower-case, in Unicode.
         email       TEXT NOT NULL,
         -- ISO 3166-1 alpha-2, upper-case.
         country     TEXT NOT NULL CHECK (length(country) = 2),
         phone       TEXT,
         city        TEXT,
         message     TEXT,
         -- BCP 47 tag: given in the form, or the browser's preferred language.
         language    TEXT,
         consent     INTEGER NOT NULL CHECK (consent IN (0, 1)),
         -- The configured extra fields the visitor filled in, as a JSON object.
         extra       TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(extra)),
         -- The checks of the status and state codes are spelt with OR: an IN list of three
         -- or more values has SQLite build a temporary B-tree each time it checks a row.
         status      TEXT NOT NULL DEFAULT 'accepted'
                     CHECK (status = 'accepted' OR status = 'duplicate' OR status = 'spam'),
         -- The section the submission was routed to (or the fallback's name). Added in
         -- version 2, hence last and with a default for rows from before.
         section     TEXT NOT NULL DEFAULT '',
         -- Columns from version 3 (spam defence, consent record).
         -- The address as duplicates and erasure match it: lower-case, domain IDNA-mapped.
         email_key   TEXT NOT NULL DEFAULT '',
         -- Why a submission is spam: a JSON array of reason codes; NULL when it is not.
         spam_reasons TEXT CHECK (spam_reasons IS NULL OR json_valid(spam_reasons)),
         -- 1 when the address signed up before, outside the duplicate window.
         is_returning INTEGER NOT NULL DEFAULT 0 CHECK (is_returning IN (0, 1)),
         -- Keyed hash of the client's address (hex HMAC-SHA256, key rotated daily and kept
         -- only in memory): links one day's posts without ever holding the address.
         client_hash TEXT,
         -- The consent text exactly as the visitor saw it, and its language.
         consent_text TEXT,
         consent_language TEXT
     ) STRICT, WITHOUT ROWID;
     INSERT INTO submissions_v4 (id, created_at, name, email, country, phone, city, message,
                                 language, consent, extra, status, section, email_key,
                                 spam_reasons, is_returning, client_hash, consent_text,
                                 consent_language)
         SELECT id, created_at, name, email, country, phone, city, message, language,
                consent, extra, status, section, email_key, spam_reasons, is_returning,
                client_hash, consent_text, consent_language
         FROM submissions;
     DROP TABLE submissions;
     ALTER TABLE submissions_v4 RENAME TO submissions;
     CREATE INDEX submissions_by_email_key ON submissions (email_key, created_at, status);

     CREATE TABLE outbox_v4 (
         -- One notification per submission; erasing the submission erases it.
         submission_id   TEXT PRIMARY KEY NOT NULL
                         REFERENCES submissions (id) ON DELETE CASCADE,
         section         TEXT NOT NULL,
         -- Stable across retries, so a receiver can spot a duplicate delivery.
         message_id      TEXT NOT NULL,
         -- Spelt with OR for the reason given at `submissions.status`.
         state           TEXT NOT NULL DEFAULT 'pending'
                         CHECK (state = 'pending' OR state = 'sent' OR state = 'failed'),
         attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
         created_at      TEXT NOT NULL,
         next_attempt_at TEXT NOT NULL,
         sent_at         TEXT,
         -- Why the last attempt failed: transport and SMTP text, never message content.
         last_error      TEXT
     ) STRICT, WITHOUT ROWID;
     INSERT INTO outbox_v4 (submission_id, section, message_id, state, attempts, created_at,
                            next_attempt_at, sent_at, last_error)
         SELECT submission_id, section, message_id, state, attempts, created_at,
                next_attempt_at, sent_at, last_error
         FROM outbox;
     DROP TABLE outbox;
     ALTER TABLE outbox_v4 RENAME TO outbox;
     CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE state = 'pending';",
    // 4 → 5: follow-up (issue 15). Accepted sign-ups start as 'new' at their sign-up
    // time. The outbox holds mails of several kinds: its key becomes `id` (a
    // notification's is its submission's), with `kind` and `period`; its foreign key
    // goes (a digest has no submission): a trigger deletes a submission's notification
    // with it instead. The
    // audit trail gains the 'followup' action. Tables whose checks or keys change are
    // copied to new ones, as in 3 → 4.
    "ALTER TABLE submissions ADD COLUMN followup TEXT
         CHECK (followup IS NULL OR followup = 'new' OR followup = 'contacted'
                OR followup = 'joined' OR followup = 'declined'
                OR followup = 'unreachable');
     ALTER TABLE submissions ADD COLUMN followup_at TEXT;
     ALTER TABLE submissions ADD COLUMN followup_by TEXT;
     ALTER TABLE submissions ADD COLUMN contacted_at TEXT;
     UPDATE submissions SET followup = 'new', followup_at = created_at
         WHERE status = 'accepted';
     CREATE INDEX submissions_open ON submissions (followup, section, created_at)
         WHERE followup = 'new' OR followup = 'contacted';

     CREATE TABLE outbox_v5 (
         id              TEXT PRIMARY KEY NOT NULL,
         kind            TEXT NOT NULL DEFAULT 'notification'
                         CHECK (kind = 'notification' OR kind = 'reminder'
                                OR kind = 'escalation' OR kind = 'digest'),
         section         TEXT NOT NULL,
         period          TEXT,
         message_id      TEXT NOT NULL,
         state           TEXT NOT NULL DEFAULT 'pending'
                         CHECK (state = 'pending' OR state = 'sent' OR state = 'failed'
                                OR state = 'cancelled'),
         attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
         created_at      TEXT NOT NULL,
         next_attempt_at TEXT NOT NULL,
         sent_at         TEXT,
         last_error      TEXT
     ) STRICT, WITHOUT ROWID;
     INSERT INTO outbox_v5 (id, kind, section, period, message_id, state, attempts,
                            created_at, next_attempt_at, sent_at, last_error)
         SELECT submission_id, 'notification', section, NULL, message_id, state, attempts,
                created_at, next_attempt_at, sent_at, last_error
         FROM outbox;
     DROP TABLE outbox;
     ALTER TABLE outbox_v5 RENAME TO outbox;
     CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE state = 'pending';
     CREATE UNIQUE INDEX outbox_once ON outbox (kind, section, period)
         WHERE period IS NOT NULL;
     CREATE TRIGGER submissions_take_their_notification AFTER DELETE ON submissions
     BEGIN
         DELETE FROM outbox WHERE id = old.id AND kind = 'notification';
     END;

     CREATE TABLE audit_v5 (
         id          INTEGER PRIMARY KEY,
         at          TEXT NOT NULL,
         actor       TEXT NOT NULL,
         action      TEXT NOT NULL
                     CHECK (action IN ('export', 'forget', 'purge', 'followup')),
         details     TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(details)),
         row_count   INTEGER,
         completed_at TEXT
     ) STRICT;
     INSERT INTO audit_v5 (id, at, actor, action, details, row_count, completed_at)
         SELECT id, at, actor, action, details, row_count, completed_at FROM audit;
     DROP TABLE audit;
     ALTER TABLE audit_v5 RENAME TO audit;",
    // 5 → 6: the visitor's side (issue 16). The status, kind and action checks gain
    // values, which SQLite cannot change in place: each table is rebuilt by the
    // procedure of 3 → 4 into schema.sql's definition at version 6. Notifications get
    // their submission in `submission_id` (their own id), so one trigger takes every
    // mail about a deleted sign-up.
    "CREATE TABLE submissions_v6 (
         id          TEXT PRIMARY KEY NOT NULL,
         created_at  TEXT NOT NULL,
         name        TEXT NOT NULL,
         email       TEXT NOT NULL,
         country     TEXT NOT NULL CHECK (length(country) = 2),
         phone       TEXT,
         city        TEXT,
         message     TEXT,
         language    TEXT,
         consent     INTEGER NOT NULL CHECK (consent IN (0, 1)),
         extra       TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(extra)),
         status      TEXT NOT NULL DEFAULT 'accepted'
                     CHECK (status = 'accepted' OR status = 'duplicate' OR status = 'spam'
                            OR status = 'unconfirmed'),
         section     TEXT NOT NULL DEFAULT '',
         email_key   TEXT NOT NULL DEFAULT '',
         spam_reasons TEXT CHECK (spam_reasons IS NULL OR json_valid(spam_reasons)),
         is_returning INTEGER NOT NULL DEFAULT 0 CHECK (is_returning IN (0, 1)),
         client_hash TEXT,
         consent_text TEXT,
         consent_language TEXT,
         followup    TEXT CHECK (followup IS NULL OR followup = 'new' OR followup = 'contacted'
                                 OR followup = 'joined' OR followup = 'declined'
                                 OR followup = 'unreachable'),
         followup_at TEXT,
         followup_by TEXT,
         contacted_at TEXT,
         visitor_language TEXT,
         consent_version TEXT,
         confirmed_at TEXT,
         confirm_client_hash TEXT
     ) STRICT, WITHOUT ROWID;
     INSERT INTO submissions_v6 (id, created_at, name, email, country, phone, city, message,
                                 language, consent, extra, status, section, email_key,
                                 spam_reasons, is_returning, client_hash, consent_text,
                                 consent_language, followup, followup_at, followup_by,
                                 contacted_at)
         SELECT id, created_at, name, email, country, phone, city, message, language,
                consent, extra, status, section, email_key, spam_reasons, is_returning,
                client_hash, consent_text, consent_language, followup, followup_at,
                followup_by, contacted_at
         FROM submissions;
     DROP TABLE submissions;
     ALTER TABLE submissions_v6 RENAME TO submissions;
     CREATE INDEX submissions_by_email_key ON submissions (email_key, created_at, status);
     CREATE INDEX submissions_open ON submissions (followup, section, created_at)
         WHERE followup = 'new' OR followup = 'contacted';

     CREATE TABLE outbox_v6 (
         id              TEXT PRIMARY KEY NOT NULL,
         kind            TEXT NOT NULL DEFAULT 'notification'
                         CHECK (kind = 'notification' OR kind = 'reminder'
                                OR kind = 'escalation' OR kind = 'digest'
                                OR kind = 'confirmation' OR kind = 'notice'
                                OR kind = 'access'),
         section         TEXT NOT NULL,
         period          TEXT,
         message_id      TEXT NOT NULL,
         state           TEXT NOT NULL DEFAULT 'pending'
                         CHECK (state = 'pending' OR state = 'sent' OR state = 'failed'
                                OR state = 'cancelled'),
         attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
         created_at      TEXT NOT NULL,
         next_attempt_at TEXT NOT NULL,
         sent_at         TEXT,
         last_error      TEXT,
         submission_id   TEXT
     ) STRICT, WITHOUT ROWID;
     INSERT INTO outbox_v6 (id, kind, section, period, message_id, state, attempts,
                            created_at, next_attempt_at, sent_at, last_error, submission_id)
         SELECT id, kind, section, period, message_id, state, attempts, created_at,
                next_attempt_at, sent_at, last_error,
                CASE WHEN kind = 'notification' THEN id END
         FROM outbox;
     DROP TABLE outbox;
     ALTER TABLE outbox_v6 RENAME TO outbox;
     CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE state = 'pending';
     CREATE UNIQUE INDEX outbox_once ON outbox (kind, section, period)
         WHERE period IS NOT NULL;
     CREATE INDEX outbox_by_submission ON outbox (submission_id)
         WHERE submission_id IS NOT NULL;
     CREATE INDEX outbox_to_visitors ON outbox (sent_at)
         WHERE kind = 'confirmation' OR kind = 'notice' OR kind = 'access';
     CREATE TRIGGER submissions_take_their_mails AFTER DELETE ON submissions
     BEGIN
         DELETE FROM outbox WHERE submission_id = old.id;
     END;

     CREATE TABLE visitor_mails (
         address_hash TEXT PRIMARY KEY NOT NULL,
         last_at      TEXT NOT NULL
     ) STRICT, WITHOUT ROWID;

     CREATE TABLE audit_v6 (
         id          INTEGER PRIMARY KEY,
         at          TEXT NOT NULL,
         actor       TEXT NOT NULL,
         action      TEXT NOT NULL CHECK (action IN ('export', 'forget', 'purge', 'followup',
                                                     'access', 'release', 'discard')),
         details     TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(details)),
         row_count   INTEGER,
         completed_at TEXT
     ) STRICT;
     INSERT INTO audit_v6 (id, at, actor, action, details, row_count, completed_at)
         SELECT id, at, actor, action, details, row_count, completed_at FROM audit;
     DROP TABLE audit;
     ALTER TABLE audit_v6 RENAME TO audit;",
    // 6 → 7: flood defence (issue 17). Sign-ups may be `held`, notifications past a
    // section's hourly cap `waiting` for the section's `overflow` mail: the checks gain
    // values, so both tables are rebuilt by the procedure of 3 → 4 into schema.sql's
    // definition at version 7, with the indexes the hold and the overflow read, and
    // `released_at` for sign-ups a review released.
    "CREATE TABLE submissions_v7 (
         id          TEXT PRIMARY KEY NOT NULL,
         created_at  TEXT NOT NULL,
         name        TEXT NOT NULL,
         email       TEXT NOT NULL,
         country     TEXT NOT NULL CHECK (length(country) = 2),
         phone       TEXT,
         city        TEXT,
         message     TEXT,
         language    TEXT,
         consent     INTEGER NOT NULL CHECK (consent IN (0, 1)),
         extra       TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(extra)),
         status      TEXT NOT NULL DEFAULT 'accepted'
                     CHECK (status = 'accepted' OR status = 'duplicate' OR status = 'spam'
                            OR status = 'unconfirmed' OR status = 'held'),
         section     TEXT NOT NULL DEFAULT '',
         email_key   TEXT NOT NULL DEFAULT '',
         spam_reasons TEXT CHECK (spam_reasons IS NULL OR json_valid(spam_reasons)),
         is_returning INTEGER NOT NULL DEFAULT 0 CHECK (is_returning IN (0, 1)),
         client_hash TEXT,
         consent_text TEXT,
         consent_language TEXT,
         followup    TEXT CHECK (followup IS NULL OR followup = 'new' OR followup = 'contacted'
                                 OR followup = 'joined' OR followup = 'declined'
                                 OR followup = 'unreachable'),
         followup_at TEXT,
         followup_by TEXT,
         contacted_at TEXT,
         visitor_language TEXT,
         consent_version TEXT,
         confirmed_at TEXT,
         confirm_client_hash TEXT,
         released_at TEXT
     ) STRICT, WITHOUT ROWID;
     INSERT INTO submissions_v7 SELECT *, NULL FROM submissions;
     DROP TABLE submissions;
     ALTER TABLE submissions_v7 RENAME TO submissions;
     CREATE INDEX submissions_by_email_key ON submissions (email_key, created_at, status);
     CREATE INDEX submissions_open ON submissions (followup, section, created_at)
         WHERE followup = 'new' OR followup = 'contacted';
     CREATE INDEX submissions_held ON submissions (section, created_at)
         WHERE status = 'held';

     CREATE TABLE outbox_v7 (
         id              TEXT PRIMARY KEY NOT NULL,
         kind            TEXT NOT NULL DEFAULT 'notification'
                         CHECK (kind = 'notification' OR kind = 'reminder'
                                OR kind = 'escalation' OR kind = 'digest'
                                OR kind = 'confirmation' OR kind = 'notice'
                                OR kind = 'access' OR kind = 'overflow'),
         section         TEXT NOT NULL,
         period          TEXT,
         message_id      TEXT NOT NULL,
         state           TEXT NOT NULL DEFAULT 'pending'
                         CHECK (state = 'pending' OR state = 'sent' OR state = 'failed'
                                OR state = 'cancelled' OR state = 'waiting'),
         attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
         created_at      TEXT NOT NULL,
         next_attempt_at TEXT NOT NULL,
         sent_at         TEXT,
         last_error      TEXT,
         submission_id   TEXT
     ) STRICT, WITHOUT ROWID;
     INSERT INTO outbox_v7 SELECT * FROM outbox;
     DROP TABLE outbox;
     ALTER TABLE outbox_v7 RENAME TO outbox;
     CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE state = 'pending';
     CREATE UNIQUE INDEX outbox_once ON outbox (kind, section, period)
         WHERE period IS NOT NULL;
     CREATE INDEX outbox_by_submission ON outbox (submission_id)
         WHERE submission_id IS NOT NULL;
     CREATE INDEX outbox_to_visitors ON outbox (sent_at)
         WHERE kind = 'confirmation' OR kind = 'notice' OR kind = 'access';
     CREATE INDEX outbox_notified ON outbox (section, sent_at) WHERE kind = 'notification';
     CREATE INDEX outbox_waiting ON outbox (section) WHERE state = 'waiting';
     CREATE UNIQUE INDEX outbox_one_overflow ON outbox (section)
         WHERE kind = 'overflow' AND state = 'pending';
     CREATE INDEX outbox_overflows ON outbox (section, sent_at) WHERE kind = 'overflow';
     CREATE TRIGGER submissions_take_their_mails AFTER DELETE ON submissions
     BEGIN
         DELETE FROM outbox WHERE submission_id = old.id;
     END;",
    // 7 → 8: sealed storage. Rows stay as they are (in clear) until `joinform seal`,
    // which the audit trail records as `seal`: its check gains the value, so the table
    // is rebuilt as in 5 → 6.
    "ALTER TABLE submissions ADD COLUMN sealed BLOB;
     ALTER TABLE submissions ADD COLUMN sealed_mail TEXT;
     CREATE TABLE audit_v8 (
         id          INTEGER PRIMARY KEY,
         at          TEXT NOT NULL,
         actor       TEXT NOT NULL,
         action      TEXT NOT NULL CHECK (action IN ('export', 'forget', 'purge', 'followup',
                                                     'access', 'release', 'discard',
                                                     'seal')),
         details     TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(details)),
         row_count   INTEGER,
         completed_at TEXT
     ) STRICT;
     INSERT INTO audit_v8 (id, at, actor, action, details, row_count, completed_at)
         SELECT id, at, actor, action, details, row_count, completed_at FROM audit;
     DROP TABLE audit;
     ALTER TABLE audit_v8 RENAME TO audit;",
    // 8 → 9: `joinform backup` and `joinform restore` are audited (a backup is a full
    // copy of personal data): the action check gains both values, so the table is
    // rebuilt as in 5 → 6.
    "CREATE TABLE audit_v9 (
         id          INTEGER PRIMARY KEY,
         at          TEXT NOT NULL,
         actor       TEXT NOT NULL,
         action      TEXT NOT NULL CHECK (action IN ('export', 'forget', 'purge', 'followup',
                                                     'access', 'release', 'discard',
                                                     'seal', 'backup', 'restore')),
         details     TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(details)),
         row_count   INTEGER,
         completed_at TEXT
     ) STRICT;
     INSERT INTO audit_v9 (id, at, actor, action, details, row_count, completed_at)
         SELECT id, at, actor, action, details, row_count, completed_at FROM audit;
     DROP TABLE audit;
     ALTER TABLE audit_v9 RENAME TO audit;",
];

const _: () = assert!(UPGRADES.len() as i64 == SCHEMA_VERSION - 1);

/// The first 16 bytes of every SQLite database file (the "magic string" of the file
/// format, <https://www.sqlite.org/fileformat.html#magic_header_string>).
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";
/// Header bytes 18 and 19 (write and read format versions) are 2 in WAL mode.
const WAL_FORMAT: u8 = 2;

/// What SQLite's URI file names must have escaped (<https://www.sqlite.org/uri.html>).
const URI_ESCAPES: &AsciiSet = &CONTROLS.add(b'?').add(b'#').add(b'%').add(b' ');

/// Checks, without writing a byte, that the file at `path` is one joinform may open:
/// absent or empty (a new database), or a SQLite database whose schema version this
/// binary knows. Opening the file for real switches it to WAL mode and sets
/// `auto_vacuum`, so this must come first: a refused file is left exactly as it was,
/// journal mode included, and gets no `-wal` or `-shm` beside it.
///
/// # Errors
/// [`StoreError::NotSqlite`] for a file that is not a SQLite database,
/// [`StoreError::TooNew`] for a newer schema version, [`StoreError::Foreign`] for
/// tables at version 0, [`StoreError::Unreadable`] if the file cannot be read.
pub fn inspect(path: &Path) -> Result<(), StoreError> {
    let unreadable = |source| StoreError::Unreadable {
        path: path.to_owned(),
        source,
    };
    let header = match read_header(path) {
        Ok(header) => header,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(unreadable(error)),
    };
    let has_wal = companion(path, "-wal").exists();
    // SQLite makes a new database of an empty file.
    if header.is_empty() && !has_wal {
        return Ok(());
    }
    let not_sqlite = || StoreError::NotSqlite {
        path: path.to_owned(),
    };
    // An empty main file beside a WAL: the WAL holds the database, SQLite reads it.
    if !header.is_empty() && !is_sqlite_header(&header) {
        return Err(not_sqlite());
    }
    let opened = open_read_only_with(path, &header);
    let looked = opened.and_then(|connection| {
        let version = user_version(&connection)?;
        let objects = own_objects(&connection)?;
        Ok((version, objects))
    });
    let (found, objects) = match looked {
        Ok(found) => found,
        Err(error) if error.sqlite_error_code() == Some(rusqlite::ErrorCode::NotADatabase) => {
            return Err(not_sqlite());
        }
        Err(error) => return Err(error.into()),
    };
    check_version(path, found, objects)
}

/// The first 100 bytes of the file at `path` (fewer for a shorter file): SQLite's
/// database header.
fn read_header(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut header = Vec::with_capacity(100);
    std::fs::File::open(path)?
        .take(100)
        .read_to_end(&mut header)?;
    Ok(header)
}

/// Whether `header` (a file's first bytes) is a whole SQLite database header.
fn is_sqlite_header(header: &[u8]) -> bool {
    header.len() == 100 && header.starts_with(SQLITE_MAGIC)
}

/// Whether the first bytes of the file at `path` are a SQLite database header (a file
/// too short to hold one is not).
///
/// # Errors
/// The I/O error of reading it.
pub fn has_sqlite_header(path: &Path) -> std::io::Result<bool> {
    Ok(is_sqlite_header(&read_header(path)?))
}

/// Opens the database file at `path` read-only without writing anything beside it:
/// a file in WAL mode with no `-wal` (nor `-journal`) beside it — a backup, a copy,
/// a database no process has open — is opened immutable, since a plain read-only
/// connection would create `-wal` and `-shm`. Any other file is opened plainly
/// read-only, so that SQLite reads its `-wal`, and a hot `-journal` beside a
/// rollback-mode file is never ignored (an immutable open would read the
/// half-written file as it is).
///
/// # Errors
/// [`StoreError::Unreadable`] when the header cannot be read; SQLite's error.
pub fn open_read_only(path: &Path) -> Result<Connection, StoreError> {
    let header = read_header(path).map_err(|source| StoreError::Unreadable {
        path: path.to_owned(),
        source,
    })?;
    Ok(open_read_only_with(path, &header)?)
}

/// [`open_read_only`] of the file at `path` whose first bytes are `header`.
fn open_read_only_with(path: &Path, header: &[u8]) -> rusqlite::Result<Connection> {
    // Without a `-wal` no process has a WAL-mode file open and the main file holds
    // everything: read as immutable, SQLite opens it without any companion or lock.
    let wal_mode = header
        .get(18..20)
        .is_some_and(|formats| formats.contains(&WAL_FORMAT));
    let quiet =
        wal_mode && !companion(path, "-wal").exists() && !companion(path, "-journal").exists();
    let read_only = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    match path.to_str().filter(|_| quiet) {
        Some(text) => Connection::open_with_flags(
            format!(
                "file:{}?immutable=1",
                utf8_percent_encode(text, URI_ESCAPES)
            ),
            read_only | OpenFlags::SQLITE_OPEN_URI,
        ),
        None => Connection::open_with_flags(path, read_only),
    }
}

/// The schema version (`PRAGMA user_version`) of `connection`'s database.
///
/// # Errors
/// SQLite's error.
pub fn user_version(connection: &Connection) -> rusqlite::Result<i64> {
    connection.pragma_query_value(None, "user_version", |row| row.get(0))
}

/// The file SQLite keeps beside `path` with `suffix` (`-wal`, `-shm`).
pub fn companion(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The names of the tables Litestream adds to a database it replicates
/// (`_litestream_seq`, `_litestream_lock`), as a `LIKE` pattern.
const LITESTREAM_TABLES: &str = r"'\_litestream\_%' ESCAPE '\'";

/// The objects in `sqlite_schema` that are not Litestream's. Litestream creates its
/// tables in any file it replicates, a new one included: if it gets there between the
/// first connection (which writes the header) and the migration, the file holds its
/// tables and nothing else, and must still be taken as new.
fn own_objects(connection: &Connection) -> rusqlite::Result<i64> {
    connection.query_row(
        &format!("SELECT count(*) FROM sqlite_schema WHERE name NOT LIKE {LITESTREAM_TABLES}"),
        [],
        |row| row.get(0),
    )
}

/// Whether Litestream has replicated this database (its tables are there).
///
/// # Errors
/// SQLite's error if `sqlite_schema` cannot be read.
pub fn has_litestream_tables(connection: &Connection) -> Result<bool, StoreError> {
    let found: i64 = connection.query_row(
        &format!("SELECT count(*) FROM sqlite_schema WHERE name LIKE {LITESTREAM_TABLES}"),
        [],
        |row| row.get(0),
    )?;
    Ok(found > 0)
}

fn check_version(path: &Path, found: i64, objects: i64) -> Result<(), StoreError> {
    if found > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: path.to_owned(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found == 0 && objects > 0 {
        return Err(StoreError::Foreign {
            path: path.to_owned(),
        });
    }
    Ok(())
}

/// Brings the schema to [`SCHEMA_VERSION`] in one transaction. [`inspect`] has vetted
/// the file before; the version is checked again here, under the write lock.
///
/// # Errors
/// As [`inspect`], and any SQLite error of the upgrade (then nothing is changed).
pub fn migrate(connection: &mut Connection, path: &Path) -> Result<(), StoreError> {
    // An upgrade may rebuild a table (3 → 4): with foreign keys on, dropping the old
    // `submissions` would delete every outbox row by cascade. The pragma is a no-op
    // inside a transaction, so it is set around it, and set back whatever happened. The
    // steps only copy rows whole, so they cannot break a reference that held before.
    connection.pragma_update(None, "foreign_keys", "OFF")?;
    let migrated = migrate_in_transaction(connection, path);
    connection.pragma_update(None, "foreign_keys", "ON")?;
    migrated
}

fn migrate_in_transaction(connection: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found = user_version(&transaction)?;
    let objects = own_objects(&transaction)?;
    check_version(path, found, objects)?;
    if found == 0 {
        transaction.execute_batch(SCHEMA_SQL)?;
    } else {
        // `found` is in 1..=SCHEMA_VERSION here, so the slice is in bounds.
        let first_step = usize::try_from(found - 1).unwrap_or(0);
        for (step, sql) in UPGRADES.iter().enumerate().skip(first_step) {
            tracing::info!(
                from = step + 1,
                to = step + 2,
                "upgrading the database schema"
            );
            transaction.execute_batch(sql)?;
        }
    }
    if found != SCHEMA_VERSION {
        transaction.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    }
    transaction.commit()?;
    Ok(())
}
