#!/usr/bin/env python3
"""Tollgate at tenant scale: 100,000 users and 300,000 API keys.

    docker/bench/tenants.py                  # SQLite; needs nginx and wrk
    BACKENDS=sqlite,postgres docker/bench/tenants.py

Seeds the users, keys and their opening ledger rows straight into a fresh database (the CLI
would take hours for 400,000 rows), then measures the release build:

- start: from exec to the first authenticated answer (GET /v1/models with a seeded key);
- resident memory at rest (3 s after start) and its peak through the whole run;
- how long a key created, disabled or deleted through the management API takes to take effect
  on the same server, and created, disabled or deleted by the CLI (another process) on a
  second server on the same database;
- the relay's p99 at 16 connections with no writes, and while the management API writes
  every second (a key created, a key disabled, a user's email changed, a top-up).

Every figure is printed beside nginx proxying the same fixed-answer upstream in the same run.

Environment: TOLLGATE_BIN (default: cargo build --release), USERS (100000), KEYS_PER_USER (3),
BACKENDS (sqlite), TOLLGATE_BENCH_POSTGRES_URL (postgres://postgres@127.0.0.1:5432/postgres),
DURATION (seconds per wrk run, 10), RESULTS (a JSON-lines file for the raw figures).
"""

import hashlib
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
USERS = int(os.environ.get("USERS", "100000"))
KEYS_PER_USER = int(os.environ.get("KEYS_PER_USER", "3"))
BACKENDS = os.environ.get("BACKENDS", "sqlite").split(",")
PG_URL = os.environ.get(
    "TOLLGATE_BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"
)
DURATION = int(os.environ.get("DURATION", "10"))
PORT = 18200
QUOTA = 10**12
START_RSS_SETTLE = 3.0


def seeded_key(n):
    """The plain key of seeded key number n (0-based)."""
    return "sk-tenant%045d" % n


def log(*parts):
    print(*parts, file=sys.stderr, flush=True)


def binary():
    path = os.environ.get("TOLLGATE_BIN")
    if path:
        return path
    log("building Tollgate (release)…")
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO, check=True)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
    return os.path.join(target, "release", "tollgate")


def run_cli(tollgate, database_url, *args):
    out = subprocess.run(
        [tollgate, *args],
        env={**os.environ, "DATABASE_URL": database_url, "RUST_LOG": "warn"},
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise SystemExit(f"tollgate {' '.join(args)} failed: {out.stderr}")
    return out.stdout


def rows(now):
    """Users, keys and opening ledger rows, as tuples in the tables' column order."""
    users, tokens, ledger = [], [], []
    for u in range(USERS):
        uid = u + 2  # id 1 is the root user the CLI made
        users.append(
            (uid, f"tenant{u}", f"tenant{u}", None, 0, None, "user", "active", "default",
             QUOTA, 0, 0, None, None, now, now)
        )
        ledger.append(
            (uid, "opening", QUOTA, "system", "", "seeded", f"opening:{uid}", now)
        )
        for k in range(KEYS_PER_USER):
            n = u * KEYS_PER_USER + k
            plain = seeded_key(n)
            digest = hashlib.sha256(plain.encode()).hexdigest()
            tokens.append(
                (uid, f"key{k}", digest, plain[:7] + "…" + plain[-4:], "active", None, 1, 0,
                 0, 0, "", "", None, now, now)
            )
    return users, tokens, ledger


USER_COLUMNS = ("id, username, display_name, email, email_verified, password_hash, role, "
                "status, group_name, quota, used_quota, request_count, invite_code, "
                "inviter_id, created_at, updated_at")
TOKEN_COLUMNS = ("user_id, name, key_hash, key_display, status, expires_at, unlimited, "
                 "remaining_quota, used_quota, request_count, allowed_models, allowed_ips, "
                 "last_used_at, created_at, updated_at")
LEDGER_COLUMNS = "user_id, kind, amount, actor, reference, reason, idempotency_key, created_at"


def seed_sqlite(path):
    users, tokens, ledger = rows(int(time.time() * 1000))
    db = sqlite3.connect(path)
    with db:
        db.executemany(f"INSERT INTO users ({USER_COLUMNS}) VALUES ({','.join('?' * 16)})", users)
        db.executemany(f"INSERT INTO tokens ({TOKEN_COLUMNS}) VALUES ({','.join('?' * 15)})", tokens)
        db.executemany(f"INSERT INTO ledger ({LEDGER_COLUMNS}) VALUES ({','.join('?' * 8)})", ledger)
    db.close()


def copy_csv(url, table, columns, data):
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in data:
        writer.writerow(["\\N" if v is None else v for v in row])
    sql = f"\\copy {table} ({columns}) FROM STDIN WITH (FORMAT csv, NULL '\\N')"
    subprocess.run(["psql", "-q", url, "-c", sql], input=buffer.getvalue(), text=True, check=True)


def seed_postgres(url):
    users, tokens, ledger = rows(int(time.time() * 1000))
    copy_csv(url, "users", USER_COLUMNS, users)
    subprocess.run(["psql", "-q", url, "-c",
                    "SELECT setval(pg_get_serial_sequence('users', 'id'), (SELECT MAX(id) FROM users))"],
                   check=True, capture_output=True)
    copy_csv(url, "tokens", TOKEN_COLUMNS, tokens)
    copy_csv(url, "ledger", LEDGER_COLUMNS, ledger)
    subprocess.run(["psql", "-q", url, "-c", "ANALYZE"], check=True)


def rss_kb(pid, field="VmRSS"):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


def request(method, url, key=None, body=None, timeout=120.0):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, b""


CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def wait_for_status(port, key, wanted, limit=30.0):
    """Seconds until a chat request with `key` answers `wanted` (polled every 2 ms)."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        status, _ = request("POST", f"http://127.0.0.1:{port}/v1/chat/completions", key, CHAT)
        if status == wanted:
            return time.monotonic() - start
        time.sleep(0.002)
    raise SystemExit(f"the server never answered {wanted} for the key within {limit} s")


RUNNING = []


class Server:
    def __init__(self, tollgate, database_url, port, log_path):
        self.port = port
        started = time.monotonic()
        self.process = subprocess.Popen(
            [tollgate, "serve", "--listen", f"127.0.0.1:{port}"],
            env={**os.environ, "DATABASE_URL": database_url, "RUST_LOG": "warn"},
            stdout=open(log_path, "w"),
            stderr=subprocess.STDOUT,
        )
        RUNNING.append(self.process)
        probe = seeded_key(0)
        while True:
            status, _ = request("GET", f"http://127.0.0.1:{port}/v1/models", probe, timeout=1)
            if status == 200:
                break
            if self.process.poll() is not None:
                raise SystemExit(f"the server exited; see {log_path}")
            time.sleep(0.005)
        self.start_seconds = time.monotonic() - started
        self.peak_kb = 0
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self):
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, rss_kb(self.process.pid))
            time.sleep(0.05)

    def rss_kb(self):
        return rss_kb(self.process.pid)

    def stop(self):
        self._stop.set()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)


def wrk(url, key, connections, seconds, script="chat.lua"):
    env = {**os.environ, "KEY": key, "MODEL": "gpt-4o-mini", "KEYS": str(USERS * KEYS_PER_USER)}
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s",
         os.path.join(HERE, script), url],
        env=env, capture_output=True, text=True, check=True,
    ).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"wrk saw failed requests:\n{out}")

    def ms(text):
        value = float(re.match(r"[\d.]+", text).group())
        return value / 1000 if text.endswith("us") else value * 1000 if text.endswith("s") and not text.endswith("ms") else value

    latency = {line.split()[0]: ms(line.split()[1]) for line in out.splitlines()
               if re.match(r"\s+(50|99)%", line)}
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    return {"rps": rps, "p50_ms": latency["50%"], "p99_ms": latency["99%"], "requests": total}


class Writer(threading.Thread):
    """Writes through the management API once a second: a key created, a key disabled, a
    user's email changed and a top-up, like a busy portal."""

    def __init__(self, port, admin_token):
        super().__init__(daemon=True)
        self.base = f"http://127.0.0.1:{port}/api"
        self.token = admin_token
        self.stop = threading.Event()
        self.writes = 0
        self.failures = 0

    def call(self, method, path, body):
        status, text = request(method, self.base + path, self.token, body)
        self.writes += 1
        if status >= 300:
            self.failures += 1
            log(f"write {method} {path} answered {status}: {text[:200]!r}")
        return text

    def run(self):
        n = 0
        while not self.stop.is_set():
            tick = time.monotonic()
            user = f"tenant{(n * 7919) % USERS}"
            created = json.loads(self.call("POST", f"/users/{user}/tokens", {"name": f"w{n}"}) or b"{}")
            if "id" in created:
                self.call("PATCH", f"/tokens/{created['id']}", {"status": "disabled"})
            self.call("PATCH", f"/users/{user}", {"email": f"{user}-{n}@example.com"})
            self.call("POST", f"/users/{user}/quota", {"usd": "0.01", "reason": "bench"})
            n += 1
            self.stop.wait(max(0.0, 1.0 - (time.monotonic() - tick)))


def key_effects(tollgate, database_url, admin_token, same, other):
    """Time for created, disabled and deleted keys to take effect: through the API on the same
    server, and through the CLI (another process) on a second server."""
    figures = {}
    api = f"http://127.0.0.1:{same.port}/api"
    for round_ in range(3):
        called = time.monotonic()
        status, body = request("POST", f"{api}/users/tenant1/tokens", admin_token, {"name": f"fx{round_}"})
        figures.setdefault("api_call_s", []).append(time.monotonic() - called)
        assert status == 201, body
        created = json.loads(body)
        figures.setdefault("api_create_s", []).append(wait_for_status(same.port, created["key"], 200))
        status, body = request("PATCH", f"{api}/tokens/{created['id']}", admin_token, {"status": "disabled"})
        assert status == 200, (status, body)
        figures.setdefault("api_disable_s", []).append(wait_for_status(same.port, created["key"], 401))
        status, body = request("POST", f"{api}/users/tenant2/tokens", admin_token, {"name": f"fy{round_}"})
        created = json.loads(body)
        wait_for_status(same.port, created["key"], 200)
        status, body = request("DELETE", f"{api}/tokens/{created['id']}", admin_token)
        assert status in (200, 204), (status, body)
        figures.setdefault("api_delete_s", []).append(wait_for_status(same.port, created["key"], 401))

        # The CLI writes; the second server learns of it from the change feed.
        cli = json.loads(run_cli(tollgate, database_url, "token", "create", "--user", "tenant3",
                                 "--name", f"cli{round_}", "--json"))
        written = time.monotonic()
        wait_for_status(other.port, cli["key"], 200)
        figures.setdefault("other_create_s", []).append(time.monotonic() - written)
        run_cli(tollgate, database_url, "token", "update", str(cli["id"]), "--status", "disabled")
        written = time.monotonic()
        wait_for_status(other.port, cli["key"], 401)
        figures.setdefault("other_disable_s", []).append(time.monotonic() - written)
        run_cli(tollgate, database_url, "token", "update", str(cli["id"]), "--status", "active")
        wait_for_status(other.port, cli["key"], 200)
        run_cli(tollgate, database_url, "token", "delete", str(cli["id"]))
        written = time.monotonic()
        wait_for_status(other.port, cli["key"], 401)
        figures.setdefault("other_delete_s", []).append(time.monotonic() - written)
    return {name: max(values) for name, values in figures.items()}


def bench_backend(tollgate, backend, work, results):
    if backend == "sqlite":
        path = os.path.join(work, "tenants.db")
        database_url = f"sqlite://{path}"
    else:
        name = "tollgate_bench_tenants"
        subprocess.run(["psql", "-q", PG_URL, "-c", f"DROP DATABASE IF EXISTS {name}"], check=True)
        subprocess.run(["psql", "-q", PG_URL, "-c", f"CREATE DATABASE {name}"], check=True)
        database_url = PG_URL.rsplit("/", 1)[0] + "/" + name
    run_cli(tollgate, database_url, "user", "create", "--username", "root", "--role", "root")
    log(f"[{backend}] seeding {USERS} users and {USERS * KEYS_PER_USER} keys…")
    seeded = time.monotonic()
    if backend == "sqlite":
        seed_sqlite(path)
    else:
        seed_postgres(database_url)
    log(f"[{backend}] seeded in {time.monotonic() - seeded:.1f} s")
    run_cli(tollgate, database_url, "channel", "add", "--name", "json", "--type", "openai",
            "--base-url", "http://127.0.0.1:18080/v1", "--key", "sk-bench-upstream",
            "--models", "gpt-4o-mini")
    run_cli(tollgate, database_url, "price", "set", "gpt-4o-mini", "--input", "0.15", "--output", "0.60")
    admin_token = json.loads(run_cli(tollgate, database_url, "admin-token", "create", "--user", "root",
                                     "--name", "bench", "--json"))["token"]

    same = Server(tollgate, database_url, PORT, os.path.join(work, f"{backend}-a.log"))
    time.sleep(START_RSS_SETTLE)
    rest_kb = same.rss_kb()
    other = Server(tollgate, database_url, PORT + 1, os.path.join(work, f"{backend}-b.log"))
    log(f"[{backend}] started in {same.start_seconds:.2f} s, {rest_kb / 1024:.0f} MB at rest")

    effects = key_effects(tollgate, database_url, admin_token, same, other)
    log(f"[{backend}] key effects: {effects}")

    key = seeded_key(12345 % (USERS * KEYS_PER_USER))
    gateway = f"http://127.0.0.1:{PORT}/v1/chat/completions"
    proxy = "http://127.0.0.1:18090/v1/chat/completions"
    wrk(gateway, key, 16, 3)  # warm up
    quiet = wrk(gateway, key, 16, DURATION)
    nginx_quiet = wrk(proxy, key, 16, DURATION)
    writer = Writer(PORT, admin_token)
    writer.start()
    busy = wrk(gateway, key, 16, DURATION)
    writer.stop.set()
    writer.join()
    nginx_busy = wrk(proxy, key, 16, DURATION)
    if writer.failures:
        raise SystemExit(f"{writer.failures} of {writer.writes} management writes failed")
    # Keys seen for the first time: every request presents the next seeded key.
    cold = wrk(gateway, key, 16, DURATION, script="many-keys.lua")
    time.sleep(1)
    warm_kb = same.rss_kb()
    figures = {
        "backend": backend,
        "users": USERS,
        "keys": USERS * KEYS_PER_USER,
        "start_s": round(same.start_seconds, 3),
        "second_server_start_s": round(other.start_seconds, 3),
        "rest_mb": round(rest_kb / 1024, 1),
        "peak_mb": round(same.peak_kb / 1024, 1),
        **{k: round(v, 4) for k, v in effects.items()},
        "p99_quiet_ms": quiet["p99_ms"],
        "p99_writes_ms": busy["p99_ms"],
        "p99_ratio": round(busy["p99_ms"] / quiet["p99_ms"], 2),
        "rps_quiet": quiet["rps"],
        "rps_writes": busy["rps"],
        "nginx_rps_quiet": nginx_quiet["rps"],
        "nginx_rps_busy": nginx_busy["rps"],
        "ratio_to_nginx_quiet": round(quiet["rps"] / nginx_quiet["rps"], 2),
        "ratio_to_nginx_writes": round(busy["rps"] / nginx_busy["rps"], 2),
        "writes": writer.writes,
        "first_sight_rps": cold["rps"],
        "first_sight_p99_ms": cold["p99_ms"],
        "keys_seen": min(cold["requests"], USERS * KEYS_PER_USER),
        "rss_after_first_sight_mb": round(warm_kb / 1024, 1),
    }
    same.stop()
    other.stop()
    results.write(json.dumps(figures) + "\n")
    results.flush()
    return figures


def main():
    for tool in ("nginx", "wrk"):
        if not shutil.which(tool):
            raise SystemExit(f"error: {tool} is required (apt-get install nginx wrk)")
    tollgate = binary()
    work = tempfile.mkdtemp(prefix="tollgate-tenants-")
    subprocess.run(["nginx", "-c", os.path.join(HERE, "upstream.conf")], check=True)
    subprocess.run(["nginx", "-c", os.path.join(HERE, "proxy.conf")], check=True)
    results_path = os.environ.get("RESULTS", os.path.join(work, "tenants.jsonl"))
    try:
        with open(results_path, "a") as results:
            for backend in BACKENDS:
                figures = bench_backend(tollgate, backend, work, results)
                print(json.dumps(figures, indent=2), flush=True)
    finally:
        for process in RUNNING:
            if process.poll() is None:
                process.kill()
        for pid_file in ("/tmp/tollgate-bench-upstream.pid", "/tmp/tollgate-bench-proxy.pid"):
            try:
                with open(pid_file) as f:
                    os.kill(int(f.read().strip()), signal.SIGTERM)
            except (FileNotFoundError, ProcessLookupError, ValueError):
                pass
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
