#!/usr/bin/env bash
# The Code2ASIN benchmark of issue 10: 2,000 EANs resolved through the API against the SP-API
# stand-in (`sp-api-standin`) at Amazon's real quota for searchCatalogItems (2 requests/s, burst
# 2). The quota's minimum for 2,000 EANs is 100 requests of 20, 50 s less the burst. Then the
# same 2,000 EANs again: every one should come from the cache (no request).
#
#   bash loadtests/code2asin_bench.sh
#
# Knobs: PM_BENCH_EANS (2000), PM_BENCH_RATE (2), PM_BENCH_BURST (2), PM_LOADTEST_PORT (18091).
# Prints per run: seconds from the job's creation to its end, requests and 429s the stand-in
# counted, the share of the quota used, and the job's own counters. Loopback only; every loop
# has a deadline. Uses the debug build (the run is paced by the quota, not by CPU).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

n="${PM_BENCH_EANS:-2000}"
rate="${PM_BENCH_RATE:-2}"
burst="${PM_BENCH_BURST:-2}"
port="${PM_LOADTEST_PORT:-18091}"
base="http://127.0.0.1:$port"
work="$(mktemp -d)"
password="code2asin-bench-admin-password"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

echo "== building"
cargo build --quiet --bin products-manager
cargo build --quiet -p pm-amazon --features standin --bin sp-api-standin
target="${CARGO_TARGET_DIR:-target}/debug"

"$target/sp-api-standin" --addr 127.0.0.1:0 --rate "$rate" --burst "$burst" >"$work/standin.out" 2>&1 &
pids+=($!)
deadline=$(( $(date +%s) + 30 ))
until [ -s "$work/standin.out" ] && grep -q '^stats:' "$work/standin.out"; do
    [ "$(date +%s)" -lt "$deadline" ] || { cat "$work/standin.out" >&2; exit 1; }
    sleep 0.1
done
sbase=$(head -1 "$work/standin.out")
field() { grep "^$1: " "$work/standin.out" | cut -d' ' -f2-; }
stats() { curl -fsS "${sbase}_standin/stats"; }

env PM__SERVER__BIND="127.0.0.1:$port" PM__STORAGE__DATA_DIR="$work/data" PM__LOG__LEVEL=warn \
    PM__AUTH__BOOTSTRAP_ADMIN_PASSWORD="$password" \
    PM__AMAZON__CLIENT_ID="$(field client_id)" PM__AMAZON__CLIENT_SECRET="$(field client_secret)" \
    PM__AMAZON__REFRESH_TOKEN="$(field refresh_token)" PM__AMAZON__ENDPOINT="$sbase" \
    PM__AMAZON__LWA_ENDPOINT="$(field lwa)" PM__AMAZON__RATE_PER_SEC="$rate" PM__AMAZON__BURST="$burst" \
    "$target/products-manager" >"$work/service.log" 2>&1 &
pids+=($!)
deadline=$(( $(date +%s) + 120 ))
until curl -fsS -o /dev/null "$base/health" 2>/dev/null; do
    [ "$(date +%s)" -lt "$deadline" ] || { cat "$work/service.log" >&2; exit 1; }
    sleep 0.2
done
token=$(curl -fsS "$base/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"username\":\"admin\",\"password\":\"$password\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

python3 - "$n" >"$work/body.json" <<'PY'
import json, sys
def ean(i):
    body = f"{800000000000 + i * 37:012d}"
    s = sum(int(d) * (3 if k % 2 else 1) for k, d in enumerate(body))
    return body + str((10 - s % 10) % 10)
print(json.dumps({"eans": [ean(i) for i in range(int(sys.argv[1]))]}))
PY

# run <label>: one job over the EANs, waited for (deadline 30 min), with the stand-in's counts
run() {
    local label="$1" before after t0 t1 job status
    before=$(stats)
    t0=$(date +%s.%N)
    job=$(curl -fsS "$base/api/v1/code2asin/jobs" -H "authorization: Bearer $token" \
        -H 'content-type: application/json' -d @"$work/body.json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    local deadline=$(( $(date +%s) + 1800 ))
    while :; do
        status=$(curl -fsS "$base/api/v1/code2asin/jobs/$job" -H "authorization: Bearer $token" \
            | python3 -c 'import json,sys; print(json.load(sys.stdin)["code2asin_status"])')
        case "$status" in succeeded|failed|cancelled) break ;; esac
        [ "$(date +%s)" -lt "$deadline" ] || { echo "$label: no end within 30 min" >&2; exit 1; }
        sleep 0.2
    done
    t1=$(date +%s.%N)
    after=$(stats)
    curl -fsS "$base/api/v1/code2asin/jobs/$job" -H "authorization: Bearer $token" >"$work/job.json"
    python3 - "$label" "$t0" "$t1" "$n" "$rate" "$burst" "$before" "$after" "$work/job.json" <<'PY'
import json, sys
label, t0, t1, n, rate, burst = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
b, a = json.loads(sys.argv[7]), json.loads(sys.argv[8])
job = json.load(open(sys.argv[9]))
c = job["counters"]
req, thr = a["requests"] - b["requests"], a["throttled"] - b["throttled"]
secs = t1 - t0
minimum = max(0.0, (-(-n // 20) - burst) / rate)
line = f"{label}: {job['code2asin_status']}, {secs:.1f} s for {n} eans (quota minimum {minimum:.1f} s, ratio {secs / minimum:.3f})" if minimum else f"{label}: {job['code2asin_status']}, {secs:.1f} s for {n} eans"
print(line)
print(f"  requests {req}, 429s {thr}; job: matched {c['matched']}, multiple {c['multiple']}, not found {c['not_found']}, errors {c['errors']}, cache hits {c['cache_hits']}, requests {c['requests']}")
if req and a.get("first_request_ms") is not None and b.get("last_request_ms") is None:
    span = (a["last_request_ms"] - a["first_request_ms"]) / 1000
    print(f"  first to last request {span:.1f} s: {(a['ok'] - burst) / (span * rate) * 100:.1f}% of the quota used")
PY
}

echo "== $n EANs at $rate requests/s, burst $burst"
run "first run"
run "second run (same EANs)"
