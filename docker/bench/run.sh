#!/usr/bin/env bash
# Tollgate's benchmark: nginx as a fixed-answer upstream and as a plain proxy hop, Tollgate on
# SQLite with auth, routing, billing and logging on, and wrk driving each in turn.
#
#   docker/bench/run.sh               # needs nginx and wrk (apt-get install nginx wrk)
#
# Prints requests/s and p50/p99 latency for: direct to the upstream, through nginx, through
# Tollgate (non-streaming and streaming), at 64 connections and at 1, as the median of ROUNDS
# rounds; Tollgate's throughput as a ratio to nginx's, its added latency over going direct, and
# its peak memory. The nginx proxy runs one worker process; Tollgate runs twice: with its default
# of one worker thread per core, and with one worker thread (`--workers 1`), the like-for-like
# comparison on a machine whose two cores also carry wrk and both nginx processes. It fails if any request fails or if billing does not add up afterwards.
#
# Then the scale-out: one node with Redis (holds in Redis, or against the allowance Redis lent
# the node, on the same SQLite database; once more with a key whose rate limits Redis counts), and three nodes of one worker thread each on one PostgreSQL database
# and Redis behind nginx round robin (cluster.conf), as docker/compose.yaml runs them but on this
# machine. Each is skipped with the reason when Redis (redis-cli ping) or PostgreSQL (psql) does
# not answer, or the build has no --redis-url. It reports their throughput as ratios to nginx,
# their added p50 at one connection, and every node's peak memory (VmHWM); the three nodes'
# database is checked for billing like the SQLite one, then dropped, and the Redis keys removed.
#
# Environment: ROUNDS (3), DURATION (seconds per run at 64 connections, 8), DURATION_C1 (5),
# CONNECTIONS (64), TOLLGATE_BIN (default: build with cargo --release), RESULTS (a file that
# keeps the raw figures as JSON lines), BENCH_REDIS_URL (redis://127.0.0.1:6379),
# BENCH_POSTGRES_URL (the server, without a database: postgres://postgres@127.0.0.1:5432).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-8}"
DURATION_C1="${DURATION_C1:-5}"
CONNECTIONS="${CONNECTIONS:-64}"
BENCH_REDIS_URL="${BENCH_REDIS_URL:-redis://127.0.0.1:6379}"
BENCH_POSTGRES_URL="${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}"
# Tollgate on PORT; with one worker on PORT+1; with Redis on PORT+2; the three nodes on PORT+3
# to PORT+5, behind nginx on 18091 (cluster.conf names those ports).
PORT=18100

for tool in nginx wrk; do
    command -v "$tool" >/dev/null || { echo "error: $tool is required (apt-get install nginx wrk)" >&2; exit 1; }
done

if [ -z "${TOLLGATE_BIN:-}" ]; then
    echo "building Tollgate (release)…"
    (cd "$repo" && cargo build --release --quiet)
    TOLLGATE_BIN="${CARGO_TARGET_DIR:-$repo/target}/release/tollgate"
fi

work="$(mktemp -d)"
server_pid=""
single_pid=""
redis_pid=""
cluster_pids=()
# Names of this run's own: its Redis keys and its PostgreSQL database.
bench_id="$(od -An -N4 -tx4 /dev/urandom | tr -d ' \n')"
redis_prefix="bench:$bench_id:"
cluster_db="tollgate_bench_$bench_id"
cluster_db_made=""
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    [ -n "$single_pid" ] && kill "$single_pid" 2>/dev/null && wait "$single_pid" 2>/dev/null
    for pid in $redis_pid "${cluster_pids[@]}"; do
        kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    done
    for pid_file in /tmp/tollgate-bench-upstream.pid /tmp/tollgate-bench-proxy.pid; do
        [ -f "$pid_file" ] && kill "$(cat "$pid_file")" 2>/dev/null
    done
    if [ "${#cluster_pids[@]}" -gt 0 ] && [ -s /tmp/tollgate-bench-cluster.pid ]; then
        kill "$(cat /tmp/tollgate-bench-cluster.pid)" 2>/dev/null || true
    fi
    if [ -n "$cluster_db_made" ]; then
        psql "$BENCH_POSTGRES_URL/postgres" -qc "DROP DATABASE IF EXISTS $cluster_db" >/dev/null 2>&1 || true
    fi
    if [ -n "$redis_pid" ] || [ "${#cluster_pids[@]}" -gt 0 ]; then
        redis-cli -u "$BENCH_REDIS_URL" --scan --pattern "${redis_prefix}*" 2>/dev/null \
            | xargs -r -n 500 redis-cli -u "$BENCH_REDIS_URL" del >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# Redis and PostgreSQL for the scale-out rows: each row is skipped, with why, when they are not
# here to use.
redis_skip=""
if ! "$TOLLGATE_BIN" serve --help | grep -q -- --redis-url; then
    redis_skip="this build has no --redis-url"
elif ! command -v redis-cli >/dev/null; then
    redis_skip="redis-cli is not installed"
elif [ "$(redis-cli -u "$BENCH_REDIS_URL" ping 2>/dev/null)" != "PONG" ]; then
    redis_skip="redis-cli ping gets no PONG from $BENCH_REDIS_URL"
fi
cluster_skip="$redis_skip"
if [ -z "$cluster_skip" ]; then
    if ! command -v psql >/dev/null; then
        cluster_skip="psql is not installed"
    elif ! psql "$BENCH_POSTGRES_URL/postgres" -qAtc "SELECT 1" >/dev/null 2>&1; then
        cluster_skip="PostgreSQL does not answer at $BENCH_POSTGRES_URL"
    fi
fi

nginx -c "$here/upstream.conf"
nginx -c "$here/proxy.conf"
sleep 0.5

RESULTS="${RESULTS:-$work/results.jsonl}"
: >"$RESULTS"
export DATABASE_URL="sqlite://$work/bench.db"
tg() { "$TOLLGATE_BIN" "$@"; }
# Builds that refuse to make a database from a management command are told to.
create=""
"$TOLLGATE_BIN" --help | grep -q -- --create-database && create="--create-database"
tg $create user create --username bench --quota-usd 1000000 >/dev/null
tg channel add --name json --type openai --base-url http://127.0.0.1:18080/v1 --key sk-bench-upstream \
    --models gpt-4o-mini >/dev/null
tg channel add --name sse --type openai --base-url http://127.0.0.1:18081/v1 --key sk-bench-upstream \
    --models gpt-4o-mini-stream >/dev/null
tg price set gpt-4o-mini --input 0.15 --output 0.60 >/dev/null
tg price set gpt-4o-mini-stream --input 0.15 --output 0.60 >/dev/null
KEY="$(tg token create --user bench --name wrk --json | sed -n 's/.*"key": "\(sk-[^"]*\)".*/\1/p')"
# A key with every rate limit set (far above what wrk can reach), so each request is admitted
# and settled on Redis's counters as well: the Redis node's limited row.
LIMITED_KEY="$(tg token create --user bench --name wrk-limited --rpm 1000000000 --tpm 1000000000000 \
    --max-concurrent 100000 --json | sed -n 's/.*"key": "\(sk-[^"]*\)".*/\1/p')"
# A team key with every budget on its path: the member's cap, the team's budget, the
# organisation's budget and its wallet, each held and settled on every request.
tg org create --name Bench --slug bench --owner bench --budget-usd 1000000 --budget-period monthly >/dev/null
tg org topup bench --usd 1000000 --reason "benchmark" >/dev/null
tg team create bench Load --budget-usd 1000000 --budget-period monthly --member-cap-usd 1000000 >/dev/null
tg team member add bench Load bench >/dev/null
TEAM_KEY="$(tg token create --user bench --name wrk-team --org bench --team Load --json | sed -n 's/.*"key": "\(sk-[^"]*\)".*/\1/p')"
export KEY TEAM_KEY

# The three nodes' database: new, with the same user, channel, price and a key.
cluster_db_url="$BENCH_POSTGRES_URL/$cluster_db"
tgc() { DATABASE_URL="$cluster_db_url" "$TOLLGATE_BIN" "$@"; }
CLUSTER_KEY=""
if [ -z "$cluster_skip" ]; then
    psql "$BENCH_POSTGRES_URL/postgres" -qc "CREATE DATABASE $cluster_db" >/dev/null
    cluster_db_made=1
    tgc user create --username bench --quota-usd 1000000 >/dev/null
    tgc channel add --name json --type openai --base-url http://127.0.0.1:18080/v1 --key sk-bench-upstream \
        --models gpt-4o-mini >/dev/null
    tgc price set gpt-4o-mini --input 0.15 --output 0.60 >/dev/null
    CLUSTER_KEY="$(tgc token create --user bench --name wrk-cluster --json | sed -n 's/.*"key": "\(sk-[^"]*\)".*/\1/p')"
fi

RUST_LOG=warn "$TOLLGATE_BIN" serve --listen "127.0.0.1:$PORT" >"$work/server.log" 2>&1 &
server_pid=$!
RUST_LOG=warn "$TOLLGATE_BIN" serve --listen "127.0.0.1:$((PORT + 1))" --workers 1 >"$work/server-1w.log" 2>&1 &
single_pid=$!
ports=("$PORT" "$((PORT + 1))")
if [ -z "$redis_skip" ]; then
    RUST_LOG=warn "$TOLLGATE_BIN" serve --listen "127.0.0.1:$((PORT + 2))" \
        --redis-url "$BENCH_REDIS_URL" --redis-key-prefix "${redis_prefix}single:" >"$work/server-redis.log" 2>&1 &
    redis_pid=$!
    ports+=("$((PORT + 2))")
fi
if [ -z "$cluster_skip" ]; then
    for node in 0 1 2; do
        DATABASE_URL="$cluster_db_url" RUST_LOG=warn "$TOLLGATE_BIN" serve --listen "127.0.0.1:$((PORT + 3 + node))" \
            --workers 1 --redis-url "$BENCH_REDIS_URL" --redis-key-prefix "${redis_prefix}cluster:" \
            >"$work/cluster-$node.log" 2>&1 &
        cluster_pids+=($!)
        ports+=("$((PORT + 3 + node))")
    done
    nginx -c "$here/cluster.conf"
fi
for port in "${ports[@]}"; do
    for _ in $(seq 1 100); do
        curl -s -o /dev/null "http://127.0.0.1:$port/v1/models" && break
        sleep 0.1
    done
    if ! curl -s -o /dev/null "http://127.0.0.1:$port/v1/models"; then
        echo "error: Tollgate on port $port did not start:" >&2
        cat "$work"/*.log >&2
        exit 1
    fi
done

# Peak resident memory of the server, sampled through the whole run.
( peak=0
  while kill -0 "$server_pid" 2>/dev/null; do
      rss=$(awk '/VmRSS/ {print $2}' "/proc/$server_pid/status" 2>/dev/null || echo 0)
      [ "${rss:-0}" -gt "$peak" ] && peak=$rss && echo "$peak" >"$work/peak_rss"
      sleep 0.2
  done ) &
idle_rss=$(awk '/VmRSS/ {print $2}' "/proc/$server_pid/status")

to_ms() { # wrk latency like 123.45us, 1.20ms, 2.00s
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) n = n / 1000; else if (v ~ /ms$/) n = n; else if (v ~ /s$/) n = n * 1000
        printf "%.3f", n }'
}

# run NAME URL CONNECTIONS SECONDS [MODEL] [STREAM] [KEY]: prints "rps p50 p99" in ms.
run() {
    local name=$1 url=$2 conns=$3 secs=$4 model=${5:-gpt-4o-mini} stream=${6:-} key=${7:-$KEY}
    local out
    out=$(KEY=$key MODEL=$model STREAM=$stream wrk -t1 -c"$conns" -d"${secs}s" --latency -s "$here/chat.lua" "$url")
    if grep -q "Non-2xx" <<<"$out" || grep -q "Socket errors" <<<"$out"; then
        echo "error: $name had failed requests:" >&2
        echo "$out" >&2
        exit 1
    fi
    local rps p50 p99 total
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
    p99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
    total=$(awk '/requests in/ {print $1}' <<<"$out")
    printf '{"run":"%s","connections":%s,"rps":%s,"p50_ms":%s,"p99_ms":%s,"requests":%s}\n' \
        "$name" "$conns" "$rps" "$p50" "$p99" "$total" >>"$RESULTS"
    echo "$rps $p50 $p99"
}

direct="http://127.0.0.1:18080/v1/chat/completions"
direct_stream="http://127.0.0.1:18081/v1/chat/completions"
proxy="http://127.0.0.1:18090/v1/chat/completions"
gateway="http://127.0.0.1:$PORT/v1/chat/completions"
gateway_1w="http://127.0.0.1:$((PORT + 1))/v1/chat/completions"
gateway_redis="http://127.0.0.1:$((PORT + 2))/v1/chat/completions"
cluster="http://127.0.0.1:18091/v1/chat/completions"

echo "warming up…"
warm=("$direct" "$proxy" "$gateway" "$gateway_1w")
[ -z "$redis_skip" ] && warm+=("$gateway_redis")
for url in "${warm[@]}"; do
    MODEL=gpt-4o-mini wrk -t1 -c"$CONNECTIONS" -d2s -s "$here/chat.lua" "$url" >/dev/null
done
if [ -z "$cluster_skip" ]; then
    KEY=$CLUSTER_KEY MODEL=gpt-4o-mini wrk -t1 -c"$CONNECTIONS" -d2s -s "$here/chat.lua" "$cluster" >/dev/null
fi
MODEL=gpt-4o-mini-stream STREAM=1 wrk -t1 -c"$CONNECTIONS" -d2s -s "$here/chat.lua" "$gateway" >/dev/null

declare -A results
rows=(direct nginx tollgate tollgate-team tollgate-1w)
[ -z "$redis_skip" ] && rows+=(tollgate-redis tollgate-redis-limited)
[ -z "$cluster_skip" ] && rows+=(cluster-3x1w)
rows+=(direct-stream tollgate-stream)
for round in $(seq 1 "$ROUNDS"); do
    echo "round $round of $ROUNDS…"
    results[direct,64,$round]=$(run direct "$direct" "$CONNECTIONS" "$DURATION")
    results[nginx,64,$round]=$(run nginx "$proxy" "$CONNECTIONS" "$DURATION")
    results[tollgate,64,$round]=$(run tollgate "$gateway" "$CONNECTIONS" "$DURATION")
    results[tollgate-team,64,$round]=$(run tollgate-team "$gateway" "$CONNECTIONS" "$DURATION" gpt-4o-mini "" "$TEAM_KEY")
    results[tollgate-1w,64,$round]=$(run tollgate-1w "$gateway_1w" "$CONNECTIONS" "$DURATION")
    if [ -z "$redis_skip" ]; then
        results[tollgate-redis,64,$round]=$(run tollgate-redis "$gateway_redis" "$CONNECTIONS" "$DURATION")
        results[tollgate-redis-limited,64,$round]=$(run tollgate-redis-limited "$gateway_redis" "$CONNECTIONS" "$DURATION" gpt-4o-mini "" "$LIMITED_KEY")
    fi
    if [ -z "$cluster_skip" ]; then
        results[cluster-3x1w,64,$round]=$(run cluster-3x1w "$cluster" "$CONNECTIONS" "$DURATION" gpt-4o-mini "" "$CLUSTER_KEY")
    fi
    results[direct-stream,64,$round]=$(run direct-stream "$direct_stream" "$CONNECTIONS" "$DURATION" gpt-4o-mini 1)
    results[tollgate-stream,64,$round]=$(run tollgate-stream "$gateway" "$CONNECTIONS" "$DURATION" gpt-4o-mini-stream 1)
    results[direct,1,$round]=$(run direct "$direct" 1 "$DURATION_C1")
    results[nginx,1,$round]=$(run nginx "$proxy" 1 "$DURATION_C1")
    results[tollgate,1,$round]=$(run tollgate "$gateway" 1 "$DURATION_C1")
    results[tollgate-team,1,$round]=$(run tollgate-team "$gateway" 1 "$DURATION_C1" gpt-4o-mini "" "$TEAM_KEY")
    results[tollgate-1w,1,$round]=$(run tollgate-1w "$gateway_1w" 1 "$DURATION_C1")
    if [ -z "$redis_skip" ]; then
        results[tollgate-redis,1,$round]=$(run tollgate-redis "$gateway_redis" 1 "$DURATION_C1")
        results[tollgate-redis-limited,1,$round]=$(run tollgate-redis-limited "$gateway_redis" 1 "$DURATION_C1" gpt-4o-mini "" "$LIMITED_KEY")
    fi
    if [ -z "$cluster_skip" ]; then
        results[cluster-3x1w,1,$round]=$(run cluster-3x1w "$cluster" 1 "$DURATION_C1" gpt-4o-mini "" "$CLUSTER_KEY")
    fi
    results[direct-stream,1,$round]=$(run direct-stream "$direct_stream" 1 "$DURATION_C1" gpt-4o-mini 1)
    results[tollgate-stream,1,$round]=$(run tollgate-stream "$gateway" 1 "$DURATION_C1" gpt-4o-mini-stream 1)
done

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
field() { # row conns index(1=rps 2=p50 3=p99)
    for round in $(seq 1 "$ROUNDS"); do
        awk -v i="$3" '{print $i}' <<<"${results[$1,$2,$round]}"
    done | median
}

printf '\n%-16s %12s %10s %10s   %12s %10s %10s\n' "" "rps (c=$CONNECTIONS)" "p50 ms" "p99 ms" "rps (c=1)" "p50 ms" "p99 ms"
for row in "${rows[@]}"; do
    printf '%-16s %12s %10s %10s   %12s %10s %10s\n' "$row" \
        "$(field "$row" 64 1)" "$(field "$row" 64 2)" "$(field "$row" 64 3)" \
        "$(field "$row" 1 1)" "$(field "$row" 1 2)" "$(field "$row" 1 3)"
done

# Ratios are taken within each round (the two runs are seconds apart, so drift on a shared
# machine cancels out), then the median over rounds is reported with the range.
round_ratios() { # numerator-row denominator-row
    for round in $(seq 1 "$ROUNDS"); do
        awk -v t="$(awk '{print $1}' <<<"${results[$1,64,$round]}")" \
            -v n="$(awk '{print $1}' <<<"${results[$2,64,$round]}")" 'BEGIN {printf "%.3f\n", t / n}'
    done
}
ratio=$(round_ratios tollgate nginx | median)
ratio_range=$(round_ratios tollgate nginx | sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {print lo "–" hi}')
ratio_team=$(round_ratios tollgate-team nginx | median)
ratio_team_range=$(round_ratios tollgate-team nginx | sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {print lo "–" hi}')
ratio_1w=$(round_ratios tollgate-1w nginx | median)
ratio_1w_range=$(round_ratios tollgate-1w nginx | sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {print lo "–" hi}')
stream_ratio=$(round_ratios tollgate-stream direct-stream | median)
added_p50=$(awk -v t="$(field tollgate 1 2)" -v d="$(field direct 1 2)" 'BEGIN {printf "%.3f", t - d}')
added_p50_team=$(awk -v t="$(field tollgate-team 1 2)" -v d="$(field direct 1 2)" 'BEGIN {printf "%.3f", t - d}')
added_p50_nginx=$(awk -v t="$(field nginx 1 2)" -v d="$(field direct 1 2)" 'BEGIN {printf "%.3f", t - d}')
added_p50_stream=$(awk -v t="$(field tollgate-stream 1 2)" -v d="$(field direct-stream 1 2)" 'BEGIN {printf "%.3f", t - d}')
sleep 0.5
peak_rss=$(cat "$work/peak_rss" 2>/dev/null || echo 0)
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$server_pid/status")
hwm_mb() { awk '/VmHWM/ {printf "%d", $2 / 1024}' "/proc/$1/status"; }

echo
echo "Tollgate / nginx throughput (c=$CONNECTIONS):       $ratio (rounds: $ratio_range), default workers"
echo "Tollgate / nginx throughput (c=$CONNECTIONS):       $ratio_team (rounds: $ratio_team_range), default workers, a team key (4 budgets held)"
echo "Tollgate / nginx throughput (c=$CONNECTIONS):       $ratio_1w (rounds: $ratio_1w_range), one worker each"
echo "Tollgate stream / direct stream (c=$CONNECTIONS):   $stream_ratio"
echo "added p50 at c=1 over direct: Tollgate ${added_p50} ms, with a team key ${added_p50_team} ms, nginx ${added_p50_nginx} ms, Tollgate stream ${added_p50_stream} ms"
if [ -z "$redis_skip" ]; then
    ratio_redis=$(round_ratios tollgate-redis nginx | median)
    ratio_redis_range=$(round_ratios tollgate-redis nginx | sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {print lo "–" hi}')
    echo "Tollgate / nginx throughput (c=$CONNECTIONS):       $ratio_redis (rounds: $ratio_redis_range), default workers, with Redis (holds in Redis or against its leases)"
    ratio_limited=$(round_ratios tollgate-redis-limited nginx | median)
    ratio_limited_range=$(round_ratios tollgate-redis-limited nginx | sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {print lo "–" hi}')
    echo "Tollgate / nginx throughput (c=$CONNECTIONS):       $ratio_limited (rounds: $ratio_limited_range), default workers, with Redis, a key with rpm, tpm and max_concurrent"
else
    echo "one node with Redis: skipped, $redis_skip"
fi
if [ -z "$cluster_skip" ]; then
    ratio_cluster=$(round_ratios cluster-3x1w nginx | median)
    ratio_cluster_range=$(round_ratios cluster-3x1w nginx | sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {print lo "–" hi}')
    echo "Tollgate / nginx throughput (c=$CONNECTIONS):       $ratio_cluster (rounds: $ratio_cluster_range), three nodes of one worker behind nginx, on PostgreSQL and Redis"
else
    echo "three nodes behind nginx: skipped, $cluster_skip"
fi
if [ -z "$redis_skip" ]; then
    added_p50_redis=$(awk -v t="$(field tollgate-redis 1 2)" -v d="$(field direct 1 2)" 'BEGIN {printf "%.3f", t - d}')
    redis_p50=$(awk -v r="$(field tollgate-redis 1 2)" -v t="$(field tollgate 1 2)" 'BEGIN {printf "%.3f", r - t}')
    echo "added p50 at c=1 over direct: Tollgate with Redis ${added_p50_redis} ms (${redis_p50} ms over Tollgate without Redis)"
    added_p50_limited=$(awk -v t="$(field tollgate-redis-limited 1 2)" -v d="$(field direct 1 2)" 'BEGIN {printf "%.3f", t - d}')
    echo "added p50 at c=1 over direct: Tollgate with Redis and a rate-limited key ${added_p50_limited} ms"
fi
if [ -z "$cluster_skip" ]; then
    added_p50_cluster=$(awk -v t="$(field cluster-3x1w 1 2)" -v d="$(field direct 1 2)" 'BEGIN {printf "%.3f", t - d}')
    echo "added p50 at c=1 over direct: three nodes behind nginx ${added_p50_cluster} ms"
fi
echo "Tollgate memory: idle $((idle_rss / 1024)) MB, peak $((peak_rss / 1024)) MB (VmHWM $((hwm / 1024)) MB)"
peaks="Tollgate $(hwm_mb "$server_pid") MB, one worker $(hwm_mb "$single_pid") MB"
[ -z "$redis_skip" ] && peaks="$peaks, with Redis $(hwm_mb "$redis_pid") MB"
if [ -z "$cluster_skip" ]; then
    peaks="$peaks, three nodes $(hwm_mb "${cluster_pids[0]}") / $(hwm_mb "${cluster_pids[1]}") / $(hwm_mb "${cluster_pids[2]}") MB"
fi
echo "peak memory per node (VmHWM): $peaks"

# Billing must add up: the log rows' costs equal what left the balance, and every request wrk
# saw complete through Tollgate has its row (requests cut when wrk stops are logged too).
sleep 1.5
measured=$(awk -F'"requests":' '/"run":"tollgate/ {sub(/}.*/, "", $2); n += $2} END {print n + 0}' "$RESULTS")
read -r rows logged_cost <<<"$(tg logs --user bench --json --limit 1 | tr -d ' ,' | awk -F: '
    /"requests"/ {r=$2} /"cost":/ {c=$2} END {print r, c}')"
read -r start_quota quota used <<<"$(tg user show bench --json | tr -d ' ,' | awk -F: '
    /"quota":/ {q=$2} /"used_quota"/ {u=$2} END {print 500000000000, q, u}')"
# The team key's spend is the organisation's, never the person's.
read -r org_quota org_used <<<"$(tg org show bench --json | tr -d ' ,' | awk -F: '
    /^"quota":/ && !q {q=$2} /^"used_quota":/ && !u {u=$2} END {print q, u}')"
echo "billing: $rows requests logged costing $logged_cost units; $measured completed under measurement"
if [ "$logged_cost" -ne $((used + org_used)) ] || [ $((start_quota - quota)) -ne "$used" ] \
    || [ $((500000000000 - org_quota)) -ne "$org_used" ]; then
    echo "error: billing does not add up: logs $logged_cost, used_quota $used + organisation $org_used, balance moved $((start_quota - quota)), wallet moved $((500000000000 - org_quota))" >&2
    exit 1
fi
if [ "$rows" -lt "$measured" ]; then
    echo "error: $measured requests completed but only $rows were logged" >&2
    exit 1
fi
echo "billing adds up: logs, used quota and balance agree to the unit."

# The same for the three nodes' database: what they logged is what left the balance.
if [ -z "$cluster_skip" ]; then
    measured=$(awk -F'"requests":' '/"run":"cluster/ {sub(/}.*/, "", $2); n += $2} END {print n + 0}' "$RESULTS")
    read -r rows logged_cost <<<"$(tgc logs --user bench --json --limit 1 | tr -d ' ,' | awk -F: '
        /"requests"/ {r=$2} /"cost":/ {c=$2} END {print r, c}')"
    read -r quota used <<<"$(tgc user show bench --json | tr -d ' ,' | awk -F: '
        /"quota":/ {q=$2} /"used_quota"/ {u=$2} END {print q, u}')"
    echo "billing, three nodes: $rows requests logged costing $logged_cost units; $measured completed under measurement"
    if [ "$logged_cost" -ne "$used" ] || [ $((start_quota - quota)) -ne "$used" ]; then
        echo "error: the three nodes' billing does not add up: logs $logged_cost, used_quota $used, balance moved $((start_quota - quota))" >&2
        exit 1
    fi
    if [ "$rows" -lt "$measured" ]; then
        echo "error: $measured requests completed through the three nodes but only $rows were logged" >&2
        exit 1
    fi
    echo "billing adds up on the three nodes' database too."
fi
