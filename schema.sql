-- joinform's whole schema at the current version (PRAGMA user_version = 2).
-- A new database file gets this text as it is; an older file is upgraded step by step
-- by the numbered upgrades in src/store/schema.rs. Keep both in step.

-- Deleted rows must not linger in free pages (erasure requests): free pages are
-- returned to the file system by incremental vacuum. Only takes effect on a new file.
PRAGMA auto_vacuum = INCREMENTAL;

-- One row per form post that passed validation, whatever its verdict.
CREATE TABLE submissions (
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
    status      TEXT NOT NULL DEFAULT 'accepted'
                CHECK (status IN ('accepted', 'duplicate', 'spam')),
    -- The section the submission was routed to (or the fallback's name). Added in
    -- version 2, hence last and with a default for rows from before.
    section     TEXT NOT NULL DEFAULT ''
) STRICT;

-- Export filters by country and time; duplicate checks look up the address.
CREATE INDEX submissions_by_country ON submissions (country, created_at);
CREATE INDEX submissions_by_time ON submissions (created_at);
CREATE INDEX submissions_by_email ON submissions (email);

-- Notifications to a section's contacts, written in the same transaction as the
-- submission and sent by the delivery worker. The message is built when sent, from the
-- submission, so erasing a submission erases its unsent mail too.
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

CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE state = 'pending';
