#!/usr/bin/env python3
"""Replication lag: from a sign-up's 2xx to the sign-up being in Litestream's replica.

Runs joinform as Litestream's child with config/litestream.yml as shipped (Litestream's
default intervals: monitor-interval 1s, sync-interval 1s), only its paths pointed into a
temporary folder and replicating to a file replica. Posts SIGN_UPS sign-ups, one at a
time at random spacing (so the posts fall at every phase of Litestream's intervals), and
for each measures the time from the 201 to the first file in the replica's level-0
directory that holds the sign-up's id (level-0 LTX files carry the changed pages as
they are, so the id is there in clear). Polls every 5 ms.

    python3 benches/replication_lag.py [JOINFORM_BINARY]

JOINFORM_BINARY defaults to target/release/joinform; `litestream` (0.5.x) must be on
PATH or named by env LITESTREAM. SIGN_UPS (default 20) sets the count. Prints each lag
and min / median / max. Not part of `cargo test`: it takes about a minute. See
docs/benchmark.md, "Replication lag".
"""

import json
import os
import pathlib
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    binary = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "target/release/joinform")
    litestream = os.environ.get("LITESTREAM", "litestream")
    count = int(os.environ.get("SIGN_UPS", "20"))
    work = pathlib.Path(tempfile.mkdtemp(prefix="jflag", dir="/tmp"))
    database = work / "data" / "joinform.db"
    replica = work / "replica"
    config = (ROOT / "config" / "litestream.yml").read_text()
    for old, new in [
        ("/data/joinform.db", str(database)),
        ("/backup/joinform", str(replica)),
        ("/tmp/litestream.sock", str(work / "ls.sock")),
    ]:
        assert old in config, old
        config = config.replace(old, new)
    (work / "litestream.yml").write_text(config)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOINFORM_")}
    env.update(
        JOINFORM_STORAGE__DATABASE=str(database),
        JOINFORM_STORAGE__LITESTREAM="true",
        JOINFORM_SERVER__LISTEN=f"127.0.0.1:{port}",
        JOINFORM_ADMIN__LISTEN="127.0.0.1:0",
        JOINFORM_MAIL__FILE_DIR=str(work / "mail"),
        JOINFORM_RATE_LIMIT__PER_IP_PER_MINUTE="1000000",
        JOINFORM_RATE_LIMIT__PER_IP_BURST="1000000",
    )
    log = open(work / "log.txt", "w")
    process = subprocess.Popen(
        [litestream, "replicate", "-config", str(work / "litestream.yml"),
         "-exec", f"{binary} serve"],
        cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while "joinform is listening" not in (work / "log.txt").read_text():
            assert time.monotonic() < deadline, "joinform did not start"
            time.sleep(0.05)
        # Litestream opens a database that did not exist when it started on its next
        # look (monitor-interval), then snapshots it.
        time.sleep(3)
        level0 = replica / "ltx" / "0"
        lags = []
        for n in range(count):
            time.sleep(random.uniform(0.2, 1.5))
            body = json.dumps({"name": "Lag Test", "email": f"lag{n}@example.org",
                               "country": "NO", "consent": True}).encode()
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/join", data=body,
                headers={"Content-Type": "application/json", "Accept": "application/json"})
            seen = set(level0.iterdir()) if level0.exists() else set()
            with urllib.request.urlopen(request) as response:
                answered = time.monotonic()
                assert response.status == 201, response.status
                sign_up = json.load(response)["id"].encode()
            found = None
            while found is None:
                assert time.monotonic() - answered < 30, "not replicated within 30 s"
                for path in set(level0.iterdir()) - seen:
                    try:
                        if sign_up in path.read_bytes():
                            found = time.monotonic()
                            break
                    except FileNotFoundError:
                        pass  # a temporary file renamed meanwhile
                time.sleep(0.005)
            lags.append(found - answered)
            print(f"sign-up {n + 1:2}: {1000 * lags[-1]:7.1f} ms", flush=True)
        text = (work / "log.txt").read_text()
        for bad in ["overwritten by another process", "truncated by another process",
                    "WAL not truncated"]:
            assert bad not in text, bad
        print(f"{count} sign-ups, lag from 201 to replica (ms): "
              f"min {1000 * min(lags):.0f}, median {1000 * statistics.median(lags):.0f}, "
              f"max {1000 * max(lags):.0f}")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        log.close()
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
