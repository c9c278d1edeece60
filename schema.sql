-- joinform's whole schema at the current version (PRAGMA user_version = 8).
-- A new database file gets this text as it is; an older file is upgraded step by step
-- by the numbered upgrades in src/store/schema.rs. Keep both in step.

-- Deleted rows must not linger in free pages (erasure requests): free pages are
-- returned to the file system by incremental vacuum. Only takes effect on a new file.
PRAGMA auto_vacuum = INCREMENTAL;

-- One row per form post that passed validation, whatever its verdict. Keyed by its id
-- with no rowid beside it: ids are time-ordered, so a new row appends to the table's
-- one B-tree, and the key serves exports (in id order, time ranges and incremental
-- runs bounded by ids) without an index of their own.
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
    -- The checks of the status and state codes are spelt with OR: an IN list of three
    -- or more values has SQLite build a temporary B-tree each time it checks a row.
    status      TEXT NOT NULL DEFAULT 'accepted'
                CHECK (status = 'accepted' OR status = 'duplicate' OR status = 'spam'
                       OR status = 'unconfirmed' OR status = 'held'),
    -- The section the submission was routed to (or the fallback's name). Added in
    -- version 2, hence last and with a default for rows from before.
    section     TEXT NOT NULL DEFAULT '',
    -- Columns from version 3 (spam defence, consent record).
    -- The address as duplicates and erasure match it: lower-case, domain IDNA-mapped.
    email_key   TEXT NOT NULL DEFAULT '',
    -- Why a submission is spam, or why it is held (status 'held', version 7: a flood
    -- was on and it proved nothing): a JSON array of reason codes; NULL otherwise.
    spam_reasons TEXT CHECK (spam_reasons IS NULL OR json_valid(spam_reasons)),
    -- 1 when the address signed up before, outside the duplicate window.
    is_returning INTEGER NOT NULL DEFAULT 0 CHECK (is_returning IN (0, 1)),
    -- Keyed hash of the client's address (hex HMAC-SHA256, key rotated daily and kept
    -- only in memory): links one day's posts without ever holding the address.
    client_hash TEXT,
    -- The consent text exactly as the visitor saw it, and its language.
    consent_text TEXT,
    consent_language TEXT,
    -- Columns from version 5 (follow-up). Where the organisers are with an accepted
    -- sign-up: 'new' until someone marks it; NULL for duplicates and spam.
    followup    TEXT CHECK (followup IS NULL OR followup = 'new' OR followup = 'contacted'
                            OR followup = 'joined' OR followup = 'declined'
                            OR followup = 'unreachable'),
    -- When the follow-up state last changed (the sign-up's time while it is 'new'), and
    -- who changed it: an admin token's name, 'link' or 'cli' (NULL while 'new').
    followup_at TEXT,
    followup_by TEXT,
    -- The first time it left 'new': the time to first contact is measured to it, and
    -- later changes keep it.
    contacted_at TEXT,
    -- Columns from version 6 (the visitor's side). The shipped language mails to the
    -- visitor are written in: the form page's, else the submission's, else the
    -- section's.
    visitor_language TEXT,
    -- Names the exact consent wording agreed to: the first 16 hex digits of the
    -- SHA-256 of consent_text.
    consent_version TEXT,
    -- Double opt-in proof: when the visitor confirmed, and a keyed hash of the
    -- confirming client's address (the same daily key as client_hash).
    confirmed_at TEXT,
    confirm_client_hash TEXT,
    -- Version 7: when a review released it from `held` or `spam`. Its follow-up counts
    -- from then, as a confirmed one's counts from its confirmation.
    released_at TEXT,
    -- Version 8, sealed storage (storage.seal_keys). `sealed`: the personal fields (name,
    -- email, phone, city, message, extra, consent_text) as one binary OpenPGP message to
    -- the operators' and the section's keys; those columns are then '' or NULL, and
    -- email_key is the keyed hash of the address (as erasure's audit hash), never the
    -- address. `sealed_mail`: the notification's protected payload, armoured and
    -- encrypted to the section's keys when the sign-up was stored, sent inside PGP/MIME
    -- when its turn comes. Both NULL for a sign-up stored in clear.
    sealed      BLOB,
    sealed_mail TEXT
) STRICT, WITHOUT ROWID;

-- The admission check (the address's sign-ups of the last day, its last accepted one)
-- and erasure look up the address. With the status in it, the check reads this index
-- alone, never the rows.
CREATE INDEX submissions_by_email_key ON submissions (email_key, created_at, status);

-- The sign-ups still open (not yet contacted, or contacted and not yet settled), by
-- state and section, oldest first: section lists, reminders, digests and gauges read
-- only this.
CREATE INDEX submissions_open ON submissions (followup, section, created_at)
    WHERE followup = 'new' OR followup = 'contacted';

-- The sign-ups held during a flood (version 7), by section and time: the review lists
-- them and the overflow mail counts them, however many the flood left.
CREATE INDEX submissions_held ON submissions (section, created_at) WHERE status = 'held';

-- Mail to a section's contacts: notifications, written in the same transaction as the
-- submission, and the follow-up's reminders, escalations and digests, which the
-- scheduler queues; and mail to visitors (confirmation, notice, access link). Every
-- message is built when sent, from the data as it is then, so erasing a person erases
-- them from every unsent mail too.
CREATE TABLE outbox (
    -- A notification's id is its submission's id (erasing the submission deletes the
    -- row in the same transaction); a reminder, escalation or digest has a
    -- time-ordered id (UUID v7) of its own.
    id              TEXT PRIMARY KEY NOT NULL,
    -- Spelt with OR for the reason given at `submissions.status`.
    kind            TEXT NOT NULL DEFAULT 'notification'
                    CHECK (kind = 'notification' OR kind = 'reminder'
                           OR kind = 'escalation' OR kind = 'digest'
                           OR kind = 'confirmation' OR kind = 'notice'
                           OR kind = 'access' OR kind = 'overflow'),
    -- The section the mail is for (the fallback's name for an escalation).
    section         TEXT NOT NULL,
    -- The UTC day (2026-11-30) a reminder or escalation is for, or the day or ISO week
    -- (2026-W49) a digest is for; NULL for notifications. One row per kind, section
    -- and period, whatever restarts or clocks do.
    period          TEXT,
    -- Stable across retries, so a receiver can spot a duplicate delivery.
    message_id      TEXT NOT NULL,
    -- 'cancelled': a reminder that had nobody left to remind of when its turn came.
    -- 'waiting' (version 7): a notification past its section's
    -- mail.max_notifications_per_section_per_hour, to go out in the section's next
    -- overflow mail.
    state           TEXT NOT NULL DEFAULT 'pending'
                    CHECK (state = 'pending' OR state = 'sent' OR state = 'failed'
                           OR state = 'cancelled' OR state = 'waiting'),
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    created_at      TEXT NOT NULL,
    next_attempt_at TEXT NOT NULL,
    sent_at         TEXT,
    -- Why the last attempt failed: transport and SMTP text, never message content.
    last_error      TEXT,
    -- The sign-up a notification or a visitor's mail is about (added in version 6);
    -- NULL for reminders, escalations and digests, which are about a section.
    submission_id   TEXT
) STRICT, WITHOUT ROWID;

CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE state = 'pending';
CREATE UNIQUE INDEX outbox_once ON outbox (kind, section, period) WHERE period IS NOT NULL;
CREATE INDEX outbox_by_submission ON outbox (submission_id) WHERE submission_id IS NOT NULL;
-- The mails sent to visitors in the last hour (rate_limit.visitor_mails_per_hour).
CREATE INDEX outbox_to_visitors ON outbox (sent_at)
    WHERE kind = 'confirmation' OR kind = 'notice' OR kind = 'access';
-- Version 7, notification overflow: the notifications each section was sent in the
-- last hour; the ones waiting for the section's overflow mail; and at most one overflow
-- mail pending per section, with the time of the last one sent.
CREATE INDEX outbox_notified ON outbox (section, sent_at) WHERE kind = 'notification';
CREATE INDEX outbox_waiting ON outbox (section) WHERE state = 'waiting';
CREATE UNIQUE INDEX outbox_one_overflow ON outbox (section)
    WHERE kind = 'overflow' AND state = 'pending';
CREATE INDEX outbox_overflows ON outbox (section, sent_at) WHERE kind = 'overflow';

-- A deleted submission takes the mails about it with it, however it is deleted
-- (erasure, withdrawal, retention, or an operator's own SQL), as the foreign key of
-- versions 2 to 4 did: a digest has no submission, so the outbox cannot have one.
CREATE TRIGGER submissions_take_their_mails AFTER DELETE ON submissions
BEGIN
    DELETE FROM outbox WHERE submission_id = old.id;
END;

-- The last time a mail to each visitor's address was queued, so that an address gets
-- at most one mail a day, even across an erasure (someone signing a person up again
-- right after they withdrew). Keyed by a keyed hash of the address (hex HMAC-SHA256
-- under a key derived from the server's secret), never the address; rows older than a
-- day are dropped.
CREATE TABLE visitor_mails (
    address_hash TEXT PRIMARY KEY NOT NULL,
    last_at      TEXT NOT NULL
) STRICT, WITHOUT ROWID;

-- Form tokens already used, so each is accepted once; a row is dropped once its token
-- has expired anyway.
CREATE TABLE used_tokens (
    nonce       TEXT PRIMARY KEY NOT NULL,
    expires_at  TEXT NOT NULL
) STRICT, WITHOUT ROWID;

-- Every export, erasure, purge, follow-up change, release or discard of spam, page
-- of a visitor's own data shown, `joinform seal` (version 8), and `joinform backup`
-- and `joinform restore` (version 9), written before the data moves. Never holds a
-- token or an address: erasure records a keyed hash of the address only.
CREATE TABLE audit (
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    -- The admin token's name, 'cli', 'server' (retention), 'link' (an organiser's
    -- follow-up link) or 'visitor' (a visitor's own withdraw or access link).
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL CHECK (action IN ('export', 'forget', 'purge', 'followup',
                                                'access', 'release', 'discard',
                                                'seal', 'backup', 'restore')),
    -- Filters, counts and the like, as a JSON object.
    details     TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(details)),
    row_count   INTEGER,
    completed_at TEXT
) STRICT;

-- Incremental exports: the last submission id each named consumer has received.
CREATE TABLE export_cursors (
    consumer    TEXT PRIMARY KEY NOT NULL,
    last_id     TEXT NOT NULL,
    updated_at  TEXT NOT NULL
) STRICT, WITHOUT ROWID;
