#!/usr/bin/env bash
# Load scenarios against a dist build (release + thin LTO) of the service on this machine (loopback only).
#
#   bash loadtests/run.sh [scenario...]     (default: health cached_read)
#
# Scenarios:
#   health        GET /health
#   cached_read   GET /api/v1/products/{id} served from the cache, then the same bytes from a
#                 bare axum handler (examples/plain_axum.rs) with the same oha settings: the
#                 ratio of the two is the figure
#   lanes         examples/lanes.rs: p50/p95/p99 of cached and uncached product reads alone and
#                 while a bulk load of 100,000 products runs (the store.catalog.bulk lane);
#                 LANES_* knobs in the example
#   search        GET /api/v1/products/search?q=... with varied queries; needs
#                 PM_LOADTEST_DATABASE_URL (PostgreSQL) and a seeded catalog (see seed_catalog.sh,
#                 PM_LOADTEST_SEED=1000000 seeds it here)
#
# The service runs on a throw-away SQLite data directory, or on the PostgreSQL server in
# PM_LOADTEST_DATABASE_URL (databases prefixed pmload_). Requests are bounded in number.
# Knobs: PM_LOADTEST_REQUESTS (default 50000), PM_LOADTEST_CONCURRENCY (default 32),
# PM_LOADTEST_PORT (default 18080). Needs oha (`cargo install oha`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

needs_oha=0
for s in "${@:-health}"; do [ "$s" = lanes ] || needs_oha=1; done
[ "$needs_oha" = 0 ] || command -v oha >/dev/null || { echo "loadtests: oha not found; cargo install oha" >&2; exit 1; }
requests="${PM_LOADTEST_REQUESTS:-50000}"
concurrency="${PM_LOADTEST_CONCURRENCY:-32}"
port="${PM_LOADTEST_PORT:-18080}"
plain_port=$((port + 1))
base="http://127.0.0.1:$port"
scenarios=("$@")
[ "${#scenarios[@]}" -gt 0 ] || scenarios=(health cached_read)

# The dist profile (release + thin LTO), as shipped.
cargo build --profile dist --quiet --bin products-manager --example plain_axum --example lanes
target="${CARGO_TARGET_DIR:-target}/dist"
data="$(mktemp -d)"
password="load-test-admin-password"
export PM__SERVER__BIND="127.0.0.1:$port" PM__STORAGE__DATA_DIR="$data" PM__LOG__LEVEL=warn \
    PM__AUTH__BOOTSTRAP_ADMIN_PASSWORD="$password" PM__AUTH__ACCESS_TOKEN_TTL_SECS=3600
if [ -n "${PM_LOADTEST_DATABASE_URL:-}" ]; then
    export PM__DATABASE__URL="$PM_LOADTEST_DATABASE_URL" PM__DATABASE__NAME_PREFIX="pmload_"
fi
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$data"
}
trap cleanup EXIT

"$target/products-manager" >"$data/service.log" 2>&1 &
pids+=($!)
wait_up() {
    local url="$1" deadline=$(( $(date +%s) + 60 ))
    until curl -fsS -o /dev/null "$url" 2>/dev/null; do
        [ "$(date +%s)" -lt "$deadline" ] || { echo "loadtests: $url did not come up" >&2; cat "$data/service.log" >&2; exit 1; }
        sleep 0.2
    done
}
wait_up "$base/health"
token="$(curl -fsS -X POST "$base/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"username\":\"admin\",\"password\":\"$password\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')"
auth=(-H "Authorization: Bearer $token")

run() {
    local name="$1"; shift
    echo "== $name: oha -n $requests -c $concurrency $*"
    oha --no-tui -n "$requests" -c "$concurrency" "$@"
}

for s in "${scenarios[@]}"; do
    case "$s" in
        health) run health "$base/health" ;;
        cached_read)
            id="$(curl -fsS -X POST "$base/api/v1/products" "${auth[@]}" -H 'content-type: application/json' \
                -d '{"ean":"4006381333931","sku":"LOAD-1","title":"load test product","brand":"Stabilo","description":"a product to read again and again"}' \
                | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
            curl -fsS "${auth[@]}" "$base/api/v1/products/$id" >"$data/body.json"
            "$target/examples/plain_axum" "127.0.0.1:$plain_port" "$data/body.json" &
            pids+=($!)
            wait_up "http://127.0.0.1:$plain_port/"
            run cached_read "${auth[@]}" "$base/api/v1/products/$id"
            # Same request shape (the header too) against the bare handler.
            run plain_axum_reference "${auth[@]}" "http://127.0.0.1:$plain_port/api/v1/products/$id"
            ;;
        lanes)
            echo "== lanes: examples/lanes.rs"
            "$target/examples/lanes" "$base" "$token"
            ;;
        search)
            [ -n "${PM_LOADTEST_DATABASE_URL:-}" ] || { echo "loadtests: search needs PM_LOADTEST_DATABASE_URL" >&2; exit 2; }
            if [ -n "${PM_LOADTEST_SEED:-}" ]; then
                bash loadtests/seed_catalog.sh "${PM_LOADTEST_DATABASE_URL%/}/pmload_catalog" "$PM_LOADTEST_SEED"
            fi
            # Terms that hit few, many and no products, plus prefixes and an exact EAN.
            run search "${auth[@]}" --rand-regex-url \
                "$base/api/v1/products/search\?q=(galaxy|cable|usb%20cable|stabilo%20pen|wireless|mouse|garden%20hose|kettle|laptop%20stand|phon|blue|noresultxyz|4006381333931)&limit=20"
            ;;
        *) echo "loadtests: unknown scenario $s" >&2; exit 2 ;;
    esac
done
