#!/usr/bin/env bash
# The import benchmark of issue 8: a generated supplier file of N rows and 9 columns (default
# 1,000,000 rows, about 330 MB) imported end to end through the API by a release build, on SQLite
# and on PostgreSQL, next to PostgreSQL's own `\copy` of the same file into a bare indexed table
# on the same server (the reference). Then the same file again (nothing changes) and a copy with
# 10% of the prices changed.
#
#   bash loadtests/import_bench.sh                      # SQLite only
#   PM_LOADTEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432 bash loadtests/import_bench.sh
#
# Knobs: PM_BENCH_ROWS (default 1000000), PM_LOADTEST_PORT (default 18090), PM_BENCH_SQLITE=0
# (skip SQLite), PM_BENCH_XLSX=0 (skip the XLSX run: a 100,000-row workbook, PM_BENCH_XLSX_ROWS,
# imported by a fresh service on SQLite for its peak RSS).
# Prints, per run: seconds end to end (upload to the job's end), rows/s, the job's own
# duration_ms, and the service's peak RSS (VmHWM) over the whole run. Loopback only; every
# loop is bounded by a deadline.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

rows="${PM_BENCH_ROWS:-1000000}"
port="${PM_LOADTEST_PORT:-18090}"
base="http://127.0.0.1:$port"
work="$(mktemp -d)"
password="import-bench-admin-password"
pid=""
cleanup() {
    [ -z "$pid" ] || kill -TERM "$pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

echo "== generating $rows rows"
python3 - "$rows" "$work" <<'PY'
import random, sys
n, work = int(sys.argv[1]), sys.argv[2]
random.seed(42)
def ean(i):
    body = f"200{i:09d}"
    s = sum(int(d) * (3 if k % 2 else 1) for k, d in enumerate(body))
    return body + str((10 - s % 10) % 10)
brands = ["Acme", "Stabilo", "Anker", "Bic", "Logitech", "Philips", "Bosch", "Tefal"]
cats = ["Bureau > Ecriture", "Informatique > Cables", "Maison > Cuisine", "Jardin > Outils"]
head = "ean;sku;title;description;brand;category;price;stock;supplier_ref\n"
with open(f"{work}/a.csv", "w") as a, open(f"{work}/b.csv", "w") as b:
    a.write(head); b.write(head)
    for i in range(n):
        price = 1 + (i % 5000) / 10
        line = [ean(i), f"SKU-{i}", f"Produit numero {i} {brands[i % 8]}",
                f"Description du produit {i}: " + "qualite standard, livraison sous 48 heures, garantie deux ans, " * 3, brands[i % 8], cats[i % 4],
                f"{price:.2f}".replace(".", ","), str(i % 100), f"REF{i:07d}"]
        a.write(";".join(line) + "\n")
        if i % 10 == 0:
            line[6] = f"{price + 1:.2f}".replace(".", ",")
        b.write(";".join(line) + "\n")
PY
ls -l "$work"/a.csv | awk '{printf "file: %.0f MB\n", $5/1048576}'
if [ "${PM_BENCH_XLSX:-1}" != 0 ]; then
    xlsx_rows="${PM_BENCH_XLSX_ROWS:-100000}"
    echo "== generating an XLSX of $xlsx_rows rows (EANs and prices stored as numbers)"
    python3 - "$xlsx_rows" "$work/c.xlsx" <<'PY'
import sys, zipfile, random
n, out = int(sys.argv[1]), sys.argv[2]
random.seed(7)
def ean(i):
    body = f"300{i:09d}"
    s = sum(int(d) * (3 if k % 2 else 1) for k, d in enumerate(body))
    return body + str((10 - s % 10) % 10)
def esc(t):
    return t.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
def col(c):
    return chr(65 + c)
brands = ["Acme", "Stabilo", "Anker", "Bic", "Logitech", "Philips", "Bosch", "Tefal"]
cats = ["Bureau > Ecriture", "Informatique > Cables", "Maison > Cuisine", "Jardin > Outils"]
head = ["ean", "sku", "title", "description", "brand", "category", "price", "stock", "supplier_ref"]
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("[Content_Types].xml", '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>')
    z.writestr("_rels/.rels", '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>')
    z.writestr("xl/workbook.xml", '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Produits" sheetId="1" r:id="rId1"/></sheets></workbook>')
    z.writestr("xl/_rels/workbook.xml.rels", '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>')
    with z.open("xl/worksheets/sheet1.xml", "w") as f:
        f.write(b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>')
        def row(r, cells):
            parts = []
            for c, v in enumerate(cells):
                ref = f"{col(c)}{r}"
                if isinstance(v, (int, float)):
                    parts.append(f'<c r="{ref}"><v>{v}</v></c>')
                else:
                    parts.append(f'<c r="{ref}" t="inlineStr"><is><t>{esc(v)}</t></is></c>')
            f.write(f'<row r="{r}">{"".join(parts)}</row>'.encode())
        row(1, head)
        for i in range(n):
            # EANs stored as numbers, like a spreadsheet does; prices as numbers.
            row(i + 2, [int(ean(i)), f"SKU-{i}", f"Produit numero {i} {brands[i % 8]}",
                        f"Description du produit {i}: " + "qualite standard, livraison sous 48 heures, garantie deux ans, " * 3,
                        brands[i % 8], cats[i % 4], round(1 + (i % 5000) / 10, 2), i % 100, f"REF{i:07d}"])
        f.write(b"</sheetData></worksheet>")
PY
    ls -l "$work"/c.xlsx | awk '{printf "xlsx: %.1f MB\n", $5/1048576}'
fi

echo "== building the release binary"
cargo build --release --quiet --bin products-manager
bin="${CARGO_TARGET_DIR:-target}/release/products-manager"

peak_rss() { awk '/VmHWM/ {printf "%.0f MB", $2/1024}' "/proc/$pid/status"; }

start() {
    rm -rf "$work/data"
    env PM__SERVER__BIND="127.0.0.1:$port" PM__STORAGE__DATA_DIR="$work/data" PM__LOG__LEVEL=warn \
        PM__AUTH__BOOTSTRAP_ADMIN_PASSWORD="$password" PM__AUTH__ACCESS_TOKEN_TTL_SECS=7200 \
        PM__IMPORTS__MAX_UPLOAD_BYTES=2000000000 "$@" "$bin" >"$work/service.log" 2>&1 &
    pid=$!
    local deadline=$(( $(date +%s) + 120 ))
    until curl -fsS -o /dev/null "$base/health" 2>/dev/null; do
        [ "$(date +%s)" -lt "$deadline" ] || { cat "$work/service.log" >&2; exit 1; }
        sleep 0.2
    done
    token=$(curl -fsS "$base/api/v1/auth/login" -H 'content-type: application/json' \
        -d "{\"username\":\"admin\",\"password\":\"$password\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
    supplier=$(curl -fsS "$base/api/v1/suppliers" -H "authorization: Bearer $token" -H 'content-type: application/json' \
        -d '{"code":"bench","name":"Bench","default_currency":"EUR"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
}

stop() {
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=""
}

# import <label> <file>: upload, wait for the job (deadline 1 h), print the figures
import() {
    local label="$1" file="$2" t0 t1 job status=""
    t0=$(date +%s.%N)
    job=$(curl -fsS "$base/api/v1/suppliers/$supplier/imports" -H "authorization: Bearer $token" \
        -F "file=@$file" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    # One poller process for the whole wait (a curl and a python per poll would take CPU from
    # the service on this 2-core machine): every 50 ms, deadline 1 h.
    python3 - "$base/api/v1/imports/jobs/$job" "$token" "$label" <<'PY' || exit 1
import json, sys, time, urllib.request
url, token, label = sys.argv[1:4]
deadline = time.monotonic() + 3600
req = urllib.request.Request(url, headers={"authorization": f"Bearer {token}"})
while True:
    j = json.load(urllib.request.urlopen(req))
    if j["status"] in ("succeeded", "failed", "cancelled"):
        break
    # A file the importer could not map waits for a person: nothing to measure.
    if '"import_status": "awaiting_mapping"' in json.dumps(j):
        sys.exit(f"{label}: the import waits for a mapping (see its progress)")
    if time.monotonic() > deadline:
        sys.exit(f"{label}: no end within an hour")
    time.sleep(0.05)
PY
    t1=$(date +%s.%N)
    curl -fsS "$base/api/v1/imports/jobs/$job" -H "authorization: Bearer $token" | python3 -c "
import json, sys
j = json.load(sys.stdin); r = j.get('result') or {}; c = r.get('counters', {})
secs = $t1 - $t0
print(f\"$label: {j['status']}, {secs:.1f} s end to end, {c.get('rows_read', 0) / secs:,.0f} rows/s; job {r.get('duration_ms', 0) / 1000:.1f} s; \"
      f\"created {c.get('created')}, updated {c.get('updated')}, unchanged {c.get('unchanged')}, rejected {c.get('rejected')}, prices changed {c.get('prices_changed')}; \" + sys.argv[1])
" "peak RSS so far $(peak_rss)"
}

run_backend() {
    local name="$1"; shift
    echo "== $name"
    start "$@"
    import "$name first import" "$work/a.csv"
    import "$name same file again" "$work/a.csv"
    import "$name 10% of prices changed" "$work/b.csv"
    stop
}

if [ "${PM_BENCH_SQLITE:-1}" != 0 ]; then
    run_backend sqlite
fi
if [ "${PM_BENCH_XLSX:-1}" != 0 ]; then
    # A fresh service, so that its peak RSS is the spreadsheet's import alone.
    echo "== xlsx (sqlite)"
    start
    import "xlsx $xlsx_rows rows" "$work/c.xlsx"
    stop
fi
if [ -n "${PM_LOADTEST_DATABASE_URL:-}" ]; then
    prefix="pmbench_$$_"
    run_backend postgresql PM__DATABASE__URL="$PM_LOADTEST_DATABASE_URL" PM__DATABASE__NAME_PREFIX="$prefix"
    echo "== reference: psql \\copy into a bare indexed table on the same server"
    db="${PM_LOADTEST_DATABASE_URL%/}/postgres"
    psql -X -q "$db" -c "DROP TABLE IF EXISTS pm_bench_copy" -c "CREATE TABLE pm_bench_copy (ean text PRIMARY KEY, sku text, title text, description text, brand text, category text, price text, stock text, supplier_ref text)" -c "CREATE INDEX ON pm_bench_copy (sku)"
    t0=$(date +%s.%N)
    psql -X -q "$db" -c "\\copy pm_bench_copy FROM '$work/a.csv' WITH (FORMAT csv, DELIMITER ';', HEADER true)"
    t1=$(date +%s.%N)
    python3 -c "print(f'\\\\copy: {$t1 - $t0:.1f} s, {$rows / ($t1 - $t0):,.0f} rows/s')"
    psql -X -q "$db" -c "DROP TABLE pm_bench_copy"
    # The floor of the import's own writes: the same rows (products with their category,
    # retail prices, stocks, offers, price and stock history) written by set-based SQL inside the server, from a
    # staging table already there, into a fresh catalog schema: no parsing, no client, no
    # lookups, no journal. What the catalog's indexes (the search document among them) cost.
    echo "== reference: the import's writes as set-based SQL inside the server (no application)"
    floor="${prefix}floor"
    psql -X -q "$db" -c "CREATE DATABASE \"$floor\""
    fdb="${PM_LOADTEST_DATABASE_URL%/}/$floor"
    for f in migrations/postgres/catalog/*.sql; do psql -X -q -v ON_ERROR_STOP=1 "$fdb" -f "$f" >/dev/null; done
    psql -X -q "$fdb" -c "CREATE UNLOGGED TABLE stage (ean text, sku text, title text, description text, brand text, category text, price text, stock text, supplier_ref text)" \
        -c "\\copy stage FROM '$work/a.csv' WITH (FORMAT csv, DELIMITER ';', HEADER true)" \
        -c "ALTER TABLE stage ADD COLUMN id uuid" \
        -c "UPDATE stage SET id = (lpad(to_hex(substr(supplier_ref, 4)::bigint), 12, '0') || '70008000' || lpad(to_hex(substr(supplier_ref, 4)::bigint), 12, '0'))::uuid" \
        -c "INSERT INTO suppliers (id, code, name, default_currency, created_at, updated_at) VALUES ('00000000-0000-0000-0000-000000000001', 'bench', 'Bench', 'EUR', now(), now())" \
        -c "CREATE TABLE cat AS SELECT category, gen_random_uuid() AS id FROM (SELECT DISTINCT category FROM stage) s" \
        -c "INSERT INTO categories (id, parent_id, name, slug, path, slug_path, created_at, updated_at) SELECT id, NULL, category, md5(category), '/' || id || '/', md5(category), now(), now() FROM cat"
    t0=$(date +%s.%N)
    psql -X -q -v ON_ERROR_STOP=1 "$fdb" <<'SQL'
BEGIN;
INSERT INTO products (id, ean, sku, title, description, brand, primary_category_id, status, created_at, updated_at, attributes, version, title_key)
    SELECT s.id, ean, sku, title, description, brand, c.id, 'draft', now(), now(), '{}', 1, lower(title) FROM stage s JOIN cat c USING (category);
INSERT INTO product_prices (id, product_id, price_type, currency, amount, valid_from, valid_to, updated_at)
    SELECT id, id, 'retail', 'EUR', replace(price, ',', '.')::numeric, NULL, NULL, now() FROM stage;
INSERT INTO product_stocks (id, product_id, warehouse, quantity, updated_at) SELECT id, id, 'bench', stock::int, now() FROM stage;
INSERT INTO supplier_products (id, supplier_id, product_id, supplier_sku, created_at, updated_at, last_seen_at)
    SELECT id, '00000000-0000-0000-0000-000000000001', id, supplier_ref, now(), now(), now() FROM stage;
INSERT INTO price_history (id, product_id, price_type, currency, valid_from, old_amount, new_amount, source, changed_at)
    SELECT id, id, 'retail', 'EUR', NULL, NULL, replace(price, ',', '.')::numeric, 'import', now() FROM stage;
INSERT INTO stock_history (id, product_id, warehouse, old_quantity, new_quantity, source, changed_at)
    SELECT id, id, 'bench', NULL, stock::int, 'import', now() FROM stage;
COMMIT;
SQL
    t1=$(date +%s.%N)
    python3 -c "print(f'set-based SQL floor: {$t1 - $t0:.1f} s, {$rows / ($t1 - $t0):,.0f} rows/s')"
    psql -X -q "$db" -c "DROP DATABASE \"$floor\" WITH (FORCE)"
    for d in $(psql -X -At "$db" -c "SELECT datname FROM pg_database WHERE datname LIKE '${prefix}%'"); do
        psql -X -q "$db" -c "DROP DATABASE \"$d\" WITH (FORCE)" || true
    done
fi
