#!/usr/bin/env bash
# Load scenarios against a release build of the service on this machine (loopback only).
#
#   bash loadtests/run.sh [scenario...]      scenarios: health product_read (default: all)
#
# Starts `products-manager` on 127.0.0.1 with a throw-away SQLite data directory (or the
# PostgreSQL server in PM_LOADTEST_DATABASE_URL), seeds what a scenario needs, runs oha for a
# bounded number of requests, prints oha's summary, and stops the service.
# Needs oha (`cargo install oha`). Knobs: PM_LOADTEST_REQUESTS (default 20000),
# PM_LOADTEST_CONCURRENCY (default 32), PM_LOADTEST_PORT (default 18080).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

command -v oha >/dev/null || { echo "loadtests: oha not found; cargo install oha" >&2; exit 1; }
requests="${PM_LOADTEST_REQUESTS:-20000}"
concurrency="${PM_LOADTEST_CONCURRENCY:-32}"
port="${PM_LOADTEST_PORT:-18080}"
base="http://127.0.0.1:$port"
scenarios=("$@")
[ "${#scenarios[@]}" -gt 0 ] || scenarios=(health product_read)

cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-target}/release/products-manager"
data="$(mktemp -d)"
export PM__SERVER__BIND="127.0.0.1:$port" PM__STORAGE__DATA_DIR="$data" PM__LOG__LEVEL=warn
if [ -n "${PM_LOADTEST_DATABASE_URL:-}" ]; then
    export PM__DATABASE__URL="$PM_LOADTEST_DATABASE_URL" PM__DATABASE__NAME_PREFIX="pmload_$$_"
fi
"$bin" >"$data/service.log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data"' EXIT

deadline=$(( $(date +%s) + 60 ))
until curl -fsS "$base/health" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "loadtests: service did not start" >&2; cat "$data/service.log" >&2; exit 1; }
    sleep 0.2
done

run() {
    local name="$1" url="$2"
    echo "== $name: oha -n $requests -c $concurrency $url"
    oha --no-tui -n "$requests" -c "$concurrency" "$url"
}

for s in "${scenarios[@]}"; do
    case "$s" in
        health) run health "$base/health" ;;
        product_read)
            id="$(curl -fsS -X POST "$base/api/v1/products" -H 'content-type: application/json' \
                -d '{"ean":"4006381333931","title":"load test product"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
            run product_read "$base/api/v1/products/$id" ;;
        *) echo "loadtests: unknown scenario $s" >&2; exit 2 ;;
    esac
done
