#!/bin/sh
# Backup figures for docs/benchmark.md ("Backup"): `joinform backup` (clear and
# encrypted), `joinform restore` (clear and encrypted) and `joinform forget --replay`
# on a database of ROWS sign-ups (default 100,000), each with its sent notification.
#
#   cargo build --release --bin joinform && sh benches/backup-figures.sh
#
# Needs python3 (its sqlite3 module fills the database) and /usr/bin/time (peak
# memory). Everything happens in a temporary folder, removed at the end.
set -eu
REPO=$(cd "$(dirname "$0")/.." && pwd)
BIN=${JOINFORM:-${CARGO_TARGET_DIR:-$REPO/target}/release/joinform}
ROWS=${ROWS:-100000}
KEYS=$REPO/tests/data/openpgp
DIR=$(mktemp -d)
PID=
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$DIR"' EXIT
cd "$DIR"
export JOINFORM_SERVER__LISTEN=127.0.0.1:0 JOINFORM_ADMIN__LISTEN=127.0.0.1:0

# joinform creates the database (schema, keys) at its first start.
"$BIN" serve 2>serve.log &
PID=$!
until grep -qs "joinform is listening" serve.log; do
    kill -0 "$PID" 2>/dev/null || { cat serve.log; exit 1; }
    sleep 0.1
done
kill -TERM "$PID"
wait "$PID" || true
PID=

python3 - "$ROWS" <<'EOF'
import sqlite3, sys
rows = int(sys.argv[1])
db = sqlite3.connect("data/joinform.db")
db.executescript(f"""
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})
INSERT INTO submissions (id, created_at, name, email, country, phone, city, message,
                         language, consent, status, section, email_key, consent_text,
                         consent_language, followup, followup_at)
SELECT printf('%08x-0000-7000-8000-%012x', i, i),
       strftime('%Y-%m-%dT%H:%M:%S', 'now', printf('-%d seconds', {rows} - i)) || '.000000Z',
       printf('Figure Person %d', i), printf('figure.person%d@example.org', i), 'NO',
       printf('+47 912 %05d', i), 'Oslo', 'I would like to help with the campaign.', 'nb',
       1, 'accepted', 'Norway', printf('figure.person%d@example.org', i),
       'I agree that the organisation may contact me.', 'en', 'new',
       strftime('%Y-%m-%dT%H:%M:%S', 'now') || '.000000Z'
FROM n;
INSERT INTO outbox (id, kind, section, message_id, state, attempts, created_at,
                    next_attempt_at, sent_at, submission_id)
SELECT id, 'notification', section, '<' || id || '@example.org>', 'sent', 1, created_at,
       created_at, created_at, id FROM submissions;
COMMIT;
PRAGMA wal_checkpoint(TRUNCATE);
""")
EOF
ls -l data/joinform.db

measure() {
    label=$1
    shift
    /usr/bin/time -f "$label: %e s wall, %M KiB peak memory" "$@" >"$label.out" 2>"$label.err" || {
        cat "$label.out" "$label.err"
        exit 1
    }
    tail -n 1 "$label.err"
}

measure backup "$BIN" backup backup.db
head -n 1 backup.out
measure backup-encrypted "$BIN" backup backup.pgp --encrypt-to "$KEYS/operator.asc"
head -n 1 backup-encrypted.out
ls -l backup.db backup.pgp

JOINFORM_STORAGE__DATABASE=$DIR/r1/joinform.db measure restore "$BIN" restore backup.db
JOINFORM_STORAGE__DATABASE=$DIR/r2/joinform.db FIGURES_PASSPHRASE="correct horse battery staple" \
    measure restore-encrypted "$BIN" restore backup.pgp \
    --decrypt-key "$KEYS/operator.secret.asc" --passphrase-env FIGURES_PASSPHRASE
grep "submissions:" restore.out restore-encrypted.out

# One erasure to replay, looked for among every stored address (each hashed once).
"$BIN" forget figure.person777@example.org >/dev/null
"$BIN" audit --since 2000-01-01 --action forget --json >erasures.jsonl
cp data/audit.key data/secret.key r1/
JOINFORM_STORAGE__DATABASE=$DIR/r1/joinform.db measure replay "$BIN" forget --replay 2000-01-01 --from erasures.jsonl
cat replay.out

# The same backup beside a serving server that takes sign-ups from 4 clients (rate
# limits and the flood gauge out of the way, as in the load benchmark).
JOINFORM_RATE_LIMIT__PER_IP_PER_MINUTE=1000000 JOINFORM_RATE_LIMIT__PER_IP_BURST=1000000 \
JOINFORM_RATE_LIMIT__GLOBAL_PER_SECOND=1000000 JOINFORM_SPAM__POW_BASELINE_PER_MINUTE=1000000 \
    "$BIN" serve 2>serve.log &
PID=$!
until grep -qs "joinform is listening" serve.log; do
    kill -0 "$PID" 2>/dev/null || { cat serve.log; exit 1; }
    sleep 0.1
done
PORT=$(grep "joinform is listening" serve.log | sed 's/.*port=\([0-9]*\).*/\1/')
python3 - "$PORT" <<'EOF2' &
import json, sys, threading, time, urllib.request
port, stop, counts = sys.argv[1], time.time() + 6, []
def post(worker):
    n = 0
    while time.time() < stop:
        body = json.dumps({"name": "Load Person", "email": f"load{worker}.{n}@example.org",
                           "country": "NO", "consent": True}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/join", body,
                                         {"Content-Type": "application/json"})
        urllib.request.urlopen(request).read()
        n += 1
    counts.append(n)
threads = [threading.Thread(target=post, args=(w,)) for w in range(4)]
for t in threads: t.start()
for t in threads: t.join()
print(f"load: {sum(counts) / 6:.0f} sign-ups/s during the run")
EOF2
LOAD=$!
sleep 2
measure backup-under-load "$BIN" backup under-load.db
head -n 1 backup-under-load.out
wait "$LOAD"
kill -TERM "$PID"
wait "$PID" || true
PID=
