#!/usr/bin/env bash
# schemathesis against a running instance: every operation of the OpenAPI document the service
# serves (/api/v1/openapi.json), a bounded number of generated requests each, as an admin.
# Any 5xx, crash, or answer the document does not allow (status, content type, headers, body
# schema) fails the run.
#
# usage: bash .ci/schemathesis.sh   (from anywhere; after `cargo test` the build is a no-op)
#
# 1. installs schemathesis (PyPI) into a virtualenv in the cache dir (as .ci/run does for moto)
# 2. builds and starts the debug binary (`cargo build --locked`, target/debug/products-manager)
#    on a free loopback port, SQLite in a temporary data dir, with a known admin password
# 3. waits for /health (deadline, no fixed sleep), logs in as admin
# 4. runs schemathesis on every operation; then, alone and last, the one that ends the session
#    (POST /api/v1/auth/logout revokes the caller's access tokens)
# 5. stops the service (trap), keeps its log and the reports when something failed
#
# environment knobs:
#   PM_CI_CACHE=dir            cache dir (virtualenv); default $HOME/.cache/products-manager
#   CARGO_TARGET_DIR=dir       where the debug binary is; default $PM_CI_CACHE/target
#   PM_ST_BIN=path             run this service binary instead (nothing is built)
#   PM_ST_MAX_EXAMPLES=n       generated requests per operation and phase (default 50: about a
#                              minute here; 100 takes about 80 s)
#   PM_ST_SEED=n               hypothesis seed (default 20240601: runs are reproducible)
#   PM_ST_WORKERS=n            concurrent workers (default 1: hypothesis 6.x is not thread-safe
#                              in schemathesis 4.32's coverage phase, two workers fail at random)
#   PM_ST_WAIT=seconds         how long to wait for the service to be healthy (default 60)
#   PM_ST_REPORT_DIR=dir       where reports and the service log go (default a temp dir)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

: "${HOME:=$(getent passwd "$(id -u)" | cut -d: -f6)}"
export HOME

cache_dir="${PM_CI_CACHE:-$HOME/.cache/products-manager}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache_dir/target}"
max_examples="${PM_ST_MAX_EXAMPLES:-50}"
seed="${PM_ST_SEED:-20240601}"
workers="${PM_ST_WORKERS:-1}"
wait_secs="${PM_ST_WAIT:-60}"
mkdir -p "$cache_dir"

log() { printf '[schemathesis] %s\n' "$*"; }
die() { printf '[schemathesis] error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- schemathesis

venv="$cache_dir/schemathesis-venv"
# 4.x: its CLI (checks, phases, modes) is what the flags below are written for.
st_spec='schemathesis>=4.32,<5'
if ! { [ -x "$venv/bin/schemathesis" ] && "$venv/bin/python" -c 'import schemathesis' >/dev/null 2>&1; }; then
    py="$(command -v python3 || true)"
    [ -n "$py" ] || die "python3 not found"
    rm -rf "$venv"
    log "creating virtualenv $venv"
    if ! "$py" -m venv "$venv"; then
        # debian's python3 needs python3-venv (ensurepip) for this
        rm -rf "$venv"
        if [ "$(id -u)" -eq 0 ]; then apt-get update -q && apt-get install -y -q python3-venv; else sudo -n apt-get install -y -q python3-venv; fi
        "$py" -m venv "$venv"
    fi
    log "installing $st_spec into $venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "$st_spec"
fi
st="$venv/bin/schemathesis"
log "$("$st" --version)"

# ---------------------------------------------------------------- the service

if [ -n "${PM_ST_BIN:-}" ]; then
    bin="$PM_ST_BIN"
else
    bin="$CARGO_TARGET_DIR/debug/products-manager"
    log "cargo build --locked --bin products-manager"
    cargo build --locked -p products-manager --bin products-manager
fi
[ -x "$bin" ] || die "no service binary at $bin"

work="$(mktemp -d "${TMPDIR:-/tmp}/pm-schemathesis.XXXXXX")"
report_dir="${PM_ST_REPORT_DIR:-$work/report}"
mkdir -p "$report_dir"
service_log="$report_dir/service.log"
pid=""
ok=0
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        # graceful stop within its grace period, then for good
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    if [ "$ok" -eq 1 ] && [ -z "${PM_ST_REPORT_DIR:-}" ]; then
        rm -rf "$work"
    else
        log "service log and reports kept in $report_dir"
        rm -rf "$work/data"
    fi
}
trap cleanup EXIT INT TERM

# A free loopback port: bind port 0, read what the kernel gave, release it.
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
base="http://127.0.0.1:$port"
password="schemathesis-$(python3 -c 'import secrets; print(secrets.token_hex(12))')"

log "starting $bin on $base (data dir $work/data)"
# Embedded SQLite defaults in a fresh data dir; `PM__*` variables only for what this run needs:
# the address, a known admin password, an access token that outlives the run, and the
# debug.sleep job kind so that enqueueing has a kind to accept. Imports from a URL are turned
# off: generated URLs would make the import jobs fetch from arbitrary hosts, and this run must
# send traffic to loopback only (a URL import is refused with 422, which the document allows).
env -i PATH="$PATH" HOME="$HOME" \
    PM__SERVER__BIND="127.0.0.1:$port" \
    PM__STORAGE__DATA_DIR="$work/data" \
    PM__AUTH__BOOTSTRAP_ADMIN_PASSWORD="$password" \
    PM__AUTH__ACCESS_TOKEN_TTL_SECS=7200 \
    PM__JOBS__DEBUG_KINDS=true \
    PM__IMPORTS__URL_SOURCES=false \
    PM__LOG__LEVEL=warn \
    "$bin" serve </dev/null >"$service_log" 2>&1 &
pid=$!

deadline=$(( $(date +%s) + wait_secs ))
until curl -fsS -m 2 "$base/health" >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null; then
        tail -n 30 "$service_log" >&2 || true
        die "the service exited before it was healthy"
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
        tail -n 30 "$service_log" >&2 || true
        die "the service was not healthy after ${wait_secs}s"
    fi
    sleep 0.2
done
log "healthy"

token="$(curl -fsS -m 10 -H 'content-type: application/json' \
    -d "{\"username\":\"admin\",\"password\":\"$password\"}" "$base/api/v1/auth/login" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')"
[ -n "$token" ] || die "no access token"

# ---------------------------------------------------------------- the run

# Checks: no 5xx; every status, content type, documented header and body as the document says.
# Not run: positive_data_acceptance (a JSON schema cannot say a GTIN's check digit or which
# brand ids exist, so valid-looking data is rightly refused with a 422) and
# negative_data_rejection (the server accepts a little more than the document promises: GTINs
# and currencies with spaces around them, lower-case currencies; the document describes the
# canonical forms).
checks=not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance

# --suppress-health-check: hypothesis's data-generation health checks (too slow, filtered too
# much) judge how hard the schemas are to draw from, not the API; the checks above still apply.
run() {
    # From the temporary directory: schemathesis keeps a cache (.schemathesis/) where it runs.
    (cd "$work" && "$st" run "$base/api/v1/openapi.json" \
        --header "Authorization: Bearer $token" \
        --checks "$checks" \
        --mode all \
        --max-examples "$max_examples" \
        --seed "$seed" \
        --workers "$workers" \
        --request-timeout 30 \
        --generation-database none \
        --suppress-health-check all \
        --no-color \
        "$@")
}

status=0
log "run 1: every operation but logout (max $max_examples examples each, seed $seed)"
# POST /auth/logout ends the caller's session (its access tokens are revoked): run with the
# others, every later request would be a 401. It runs alone, last.
run --exclude-operation-id logout \
    --report junit --report-junit-path "$report_dir/junit.xml" || status=$?
log "run 2: logout"
run --include-operation-id logout \
    --report junit --report-junit-path "$report_dir/junit-logout.xml" || status=$?

if [ "$status" -ne 0 ]; then
    log "FAILED (exit $status)"
    exit "$status"
fi
if grep -qE 'panicked|internal error' "$service_log"; then
    grep -E 'panicked|internal error' "$service_log" | head -n 20 >&2
    die "the service logged a panic or an internal error"
fi
ok=1
log "passed"
