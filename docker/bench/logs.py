#!/usr/bin/env python3
"""Tollgate's log pages at scale: 1,000,000 request log rows, 1,000 users, 50 channels.

    docker/bench/logs.py                            # SQLite
    BACKENDS=sqlite,postgres docker/bench/logs.py   # and PostgreSQL (needs psql)

Seeds users, keys and the log rows straight into a fresh database (bulk inserts: SQLite's
executemany in one transaction, PostgreSQL's COPY), marks them as written before the rollups
existed, and starts the release build, which builds the log indexes and rolls the rows up in
the background as after an upgrade (the time it takes is printed). Then, over loopback, one
warm-up and GETS sequential GETs of each page, and their p95:

- the admin logs page unfiltered, and filtered by user, by model and by channel;
- the admin overview (the last 24 hours, its default range of 7 days, and the last 30 days);
- a user's dashboard.

Traffic is shaped like a gateway's: 30 days of requests; users' shares follow a Zipf law (a few
heavy users, a long tail); each user calls two or three models; each model is served by a few
channels; 3 % of requests fail upstream and 1 % are refused before any channel.

Environment: PAGES (measure only the pages whose label holds one of these comma-separated
words, e.g. `dashboard,overview`), TOLLGATE_BIN (default: cargo build --release), ROWS (1000000), USERS (1000),
CHANNELS (50), MODELS (20), DAYS (30), GETS (200), LIMIT_MS (150), BACKENDS (sqlite),
TOLLGATE_BENCH_POSTGRES_URL (postgres://postgres@127.0.0.1:5432/postgres), RESULTS (a JSON-lines
file for the raw figures). Exits non-zero when a page's p95 is over LIMIT_MS or a GET fails.
"""

import csv
import hashlib
import http.client
import io
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
ROWS = int(os.environ.get("ROWS", "1000000"))
USERS = int(os.environ.get("USERS", "1000"))
CHANNELS = int(os.environ.get("CHANNELS", "50"))
MODELS = int(os.environ.get("MODELS", "20"))
DAYS = int(os.environ.get("DAYS", "30"))
GETS = int(os.environ.get("GETS", "200"))
LIMIT_MS = float(os.environ.get("LIMIT_MS", "150"))
BACKENDS = os.environ.get("BACKENDS", "sqlite").split(",")
PG_URL = os.environ.get("TOLLGATE_BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
PORT = 18200
PASSWORD = "bench password 1"
# The dashboard's user: a heavy one (rank 5 of the Zipf law).
DASHBOARD_RANK = 5


def log(text):
    print(text, file=sys.stderr, flush=True)


def tollgate_bin():
    if os.environ.get("TOLLGATE_BIN"):
        return os.environ["TOLLGATE_BIN"]
    log("building Tollgate (release)…")
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "tollgate"], cwd=REPO, check=True)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
    return os.path.join(target, "release", "tollgate")


def run_cli(tollgate, database_url, *args):
    return subprocess.run([tollgate, *args], env={**os.environ, "DATABASE_URL": database_url},
                          capture_output=True, text=True, check=True).stdout


USER_COLUMNS = ("id, username, display_name, email, email_verified, password_hash, role, "
                "status, group_name, quota, used_quota, request_count, invite_code, "
                "inviter_id, created_at, updated_at")
TOKEN_COLUMNS = ("id, user_id, name, key_hash, key_display, status, expires_at, unlimited, "
                 "remaining_quota, used_quota, request_count, allowed_models, allowed_ips, "
                 "last_used_at, created_at, updated_at")
LOG_COLUMNS = ("created_at, request_id, user_id, username, token_id, token_name, group_name, "
               "endpoint, model, upstream_model, channel_id, channel_name, attempts, "
               "prompt_tokens, completion_tokens, cached_tokens, usage_estimated, cost, "
               "latency_ms, ttft_ms, is_stream, outcome, status_code, error_message, client_ip")
# A channel that serves requests, picked while the traffic is made.
BUSY_CHANNEL = [0]
# Seeded ids start above what the command line made (root, the dashboard's user, channels).
FIRST_ID = 1000


def people(now):
    users, tokens = [], []
    for n in range(USERS):
        uid = FIRST_ID + n
        plain = "sk-benchlogs" + hashlib.sha256(str(n).encode()).hexdigest()[:36]
        users.append((uid, f"u{n}", f"u{n}", None, 0, None, "user", "active", "default",
                      100_000_000, 0, 0, f"inv{n}", None, now, now))
        tokens.append((uid, uid, "main", hashlib.sha256(plain.encode()).hexdigest(),
                       plain[:7] + "…" + plain[-4:], "active", None, 1, 0, 0, 0, "", "",
                       None, now, now))
    return users, tokens


def traffic(now, channel_ids, dashboard_user):
    """The log rows, in batches of tuples in LOG_COLUMNS order."""
    rng = random.Random(7)
    weights = [1.0 / (rank + 1) ** 1.1 for rank in range(USERS)]
    user_ids = [FIRST_ID + n for n in range(USERS)]
    names = {uid: f"u{uid - FIRST_ID}" for uid in user_ids}
    # The dashboard's user takes the place of a heavy one.
    user_ids[DASHBOARD_RANK] = dashboard_user[0]
    names[dashboard_user[0]] = dashboard_user[1]
    tokens = {uid: (uid if uid >= FIRST_ID else dashboard_user[2]) for uid in user_ids}
    models = [f"model-{m}" for m in range(MODELS)]
    served_by = {m: rng.sample(channel_ids, 3) for m in models}
    # The channel filter's page reads a channel with traffic.
    BUSY_CHANNEL[0] = served_by[models[min(3, MODELS - 1)]][0]
    prefers = {uid: rng.sample(models, rng.choice([2, 3])) for uid in user_ids}
    span = DAYS * 86_400_000
    batch = []
    for i in range(ROWS):
        uid = rng.choices(user_ids, weights)[0]
        model = rng.choice(prefers[uid])
        roll = rng.random()
        at = now - 60_000 - int(rng.random() * span)
        latency = int(rng.lognormvariate(6.3, 0.7))
        if roll < 0.01:
            row = (at, f"bench-{i}", uid, names[uid], tokens[uid], "main", "default",
                   "chat.completions", model, "", None, "", 0, 0, 0, 0, 0, 0, 2, None, 0,
                   "refused", 429, "insufficient quota", "127.0.0.1")
        else:
            channel = rng.choice(served_by[model])
            failed = roll < 0.04
            stream = rng.random() < 0.5
            prompt, completion = rng.randint(20, 2000), 0 if failed else rng.randint(5, 800)
            row = (at, f"bench-{i}", uid, names[uid], tokens[uid], "main", "default",
                   "chat.completions", model, model, channel, f"channel-{channel}", 1, prompt,
                   completion, 0, 0, 0 if failed else prompt + completion * 4, latency,
                   int(latency * 0.3) if stream else None, int(stream),
                   "upstream_error" if failed else "success", 502 if failed else 200,
                   "upstream said 502" if failed else "", "127.0.0.1")
        batch.append(row)
        if len(batch) == 100_000:
            yield batch
            batch = []
    if batch:
        yield batch


def seed_sqlite(path, now, channel_ids, dashboard_user):
    users, tokens = people(now)
    db = sqlite3.connect(path)
    with db:
        db.executemany(f"INSERT INTO users ({USER_COLUMNS}) VALUES ({','.join('?' * 16)})", users)
        db.executemany(f"INSERT INTO tokens ({TOKEN_COLUMNS}) VALUES ({','.join('?' * 16)})", tokens)
        for batch in traffic(now, channel_ids, dashboard_user):
            db.executemany(f"INSERT INTO request_logs ({LOG_COLUMNS}) VALUES ({','.join('?' * 25)})", batch)
        # Written before the rollups: the server rolls them up as after an upgrade.
        db.execute("UPDATE rollup_backfill SET through_id = (SELECT MAX(id) FROM request_logs), done_id = 0")
    db.execute("ANALYZE")
    db.close()


def copy_csv(url, table, columns, data):
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in data:
        writer.writerow(["\\N" if v is None else v for v in row])
    sql = f"\\copy {table} ({columns}) FROM STDIN WITH (FORMAT csv, NULL '\\N')"
    subprocess.run(["psql", "-q", url, "-c", sql], input=buffer.getvalue(), text=True, check=True)


def psql(url, sql):
    subprocess.run(["psql", "-q", url, "-c", sql], check=True, capture_output=True)


def seed_postgres(url, now, channel_ids, dashboard_user):
    users, tokens = people(now)
    copy_csv(url, "users", USER_COLUMNS, users)
    copy_csv(url, "tokens", TOKEN_COLUMNS, tokens)
    for table in ("users", "tokens"):
        psql(url, f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))")
    for batch in traffic(now, channel_ids, dashboard_user):
        copy_csv(url, "request_logs", LOG_COLUMNS, batch)
    psql(url, "UPDATE rollup_backfill SET through_id = (SELECT MAX(id) FROM request_logs), done_id = 0")
    psql(url, "ANALYZE")


class Session:
    """A signed-in browser: one keep-alive connection, its cookies."""

    def __init__(self, port):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.cookies = {}

    def send(self, method, path, body=None):
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            self.connection.request(method, path, body=body, headers=headers)
            response = self.connection.getresponse()
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            # The server closed the idle keep-alive connection: open another.
            self.connection.close()
            self.connection.request(method, path, body=body, headers=headers)
            response = self.connection.getresponse()
        text = response.read().decode()
        for name, value in response.getheaders():
            if name.lower() == "set-cookie":
                pair = value.split(";", 1)[0]
                key, _, val = pair.partition("=")
                self.cookies[key.strip()] = val
        return response.status, text

    def sign_in(self, login):
        _, page = self.send("GET", "/login")
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or \
            re.search(r'value="([^"]+)"[^>]*name="csrf_token"', page)
        form = urllib.parse.urlencode({"csrf_token": token.group(1), "login": login, "password": PASSWORD})
        status, _ = self.send("POST", "/login", form)
        if status not in (200, 303):
            raise SystemExit(f"could not sign in as {login}: {status}")


def p95(path, session):
    status, _ = session.send("GET", path)
    if status != 200:
        raise SystemExit(f"GET {path} answered {status}")
    times = []
    for _ in range(GETS):
        started = time.perf_counter()
        status, _ = session.send("GET", path)
        times.append((time.perf_counter() - started) * 1000)
        if status != 200:
            raise SystemExit(f"GET {path} answered {status}")
    times.sort()
    return {"p50_ms": round(times[len(times) // 2], 1), "p95_ms": round(times[int(len(times) * 0.95) - 1], 1)}


def run(backend, tollgate, work):
    if backend == "sqlite":
        path = os.path.join(work, "logs.db")
        database_url = f"sqlite://{path}"
    else:
        name = "tollgate_bench_logs"
        subprocess.run(["psql", "-q", PG_URL, "-c", f"DROP DATABASE IF EXISTS {name}"], check=True)
        subprocess.run(["psql", "-q", PG_URL, "-c", f"CREATE DATABASE {name}"], check=True)
        database_url = PG_URL.rsplit("/", 1)[0] + "/" + name
    run_cli(tollgate, database_url, "--create-database", "user", "create", "--username", "root", "--role", "root",
            "--password", PASSWORD)
    dashboard = json.loads(run_cli(tollgate, database_url, "user", "create", "--username", "dash",
                                   "--password", PASSWORD, "--quota-usd", "100", "--json"))
    key = json.loads(run_cli(tollgate, database_url, "token", "create", "--user", "dash", "--name", "main", "--json"))
    channel_ids = []
    for c in range(CHANNELS):
        channel = json.loads(run_cli(tollgate, database_url, "channel", "add", "--name", f"channel-{c}",
                                     "--type", "openai", "--base-url", "http://127.0.0.1:9/v1",
                                     "--key", "sk-bench-upstream", "--models", "model-0", "--json"))
        channel_ids.append(channel["id"])
    log(f"[{backend}] seeding {ROWS} log rows for {USERS} users over {DAYS} days…")
    started = time.monotonic()
    now = int(time.time() * 1000)
    dashboard_user = (dashboard["id"], "dash", key["id"])
    if backend == "sqlite":
        seed_sqlite(path, now, channel_ids, dashboard_user)
    else:
        seed_postgres(database_url, now, channel_ids, dashboard_user)
    log(f"[{backend}] seeded in {time.monotonic() - started:.0f} s")

    server_log = open(os.path.join(work, f"{backend}.log"), "w")
    started = time.monotonic()
    server = subprocess.Popen([tollgate, "serve", "--listen", f"127.0.0.1:{PORT}"],
                              env={**os.environ, "DATABASE_URL": database_url, "RUST_LOG": "warn"},
                              stdout=server_log, stderr=subprocess.STDOUT)
    try:
        admin = None
        while admin is None:
            try:
                admin = Session(PORT)
                admin.sign_in("root")
            except (ConnectionError, OSError):
                admin = None
                if server.poll() is not None:
                    raise SystemExit(f"the server exited; see {server_log.name}")
                time.sleep(0.1)
        # The indexes and the rollups of the seeded rows are made in the background.
        while 'id="rebuilding"' in admin.send("GET", "/admin?range=24h")[1]:
            time.sleep(1)
        log(f"[{backend}] indexes built and {ROWS} rows rolled up in {time.monotonic() - started:.0f} s")
        user = Session(PORT)
        user.sign_in("dash")
        heavy = f"u{1}"
        pages = [
            ("admin logs", admin, "/admin/logs"),
            ("admin logs by user", admin, f"/admin/logs?user={heavy}"),
            ("admin logs by model", admin, "/admin/logs?model=model-3"),
            ("admin logs by channel", admin, f"/admin/logs?channel={BUSY_CHANNEL[0]}"),
            ("overview (24 hours)", admin, "/admin?range=24h"),
            ("overview (7 days)", admin, "/admin"),
            ("overview (30 days)", admin, "/admin?range=30d"),
            ("dashboard", user, "/dashboard"),
        ]
        only = [p for p in os.environ.get("PAGES", "").split(",") if p]
        results = {}
        for label, session, path in pages:
            if only and not any(word in label for word in only):
                continue
            results[label] = p95(path, session)
            log(f"[{backend}] {label:<24} p50 {results[label]['p50_ms']:>7} ms  p95 {results[label]['p95_ms']:>7} ms")
        return results
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def main():
    tollgate = tollgate_bin()
    failed = []
    with tempfile.TemporaryDirectory() as work:
        for backend in BACKENDS:
            results = run(backend, tollgate, work)
            if os.environ.get("RESULTS"):
                with open(os.environ["RESULTS"], "a") as out:
                    out.write(json.dumps({"backend": backend, "rows": ROWS, "pages": results}) + "\n")
            failed += [f"{backend}: {label}" for label, r in results.items() if r["p95_ms"] > LIMIT_MS]
    if failed:
        raise SystemExit(f"over {LIMIT_MS} ms at p95: {', '.join(failed)}")


if __name__ == "__main__":
    main()
