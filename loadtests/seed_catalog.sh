#!/usr/bin/env bash
# Seeds N products into a migrated PostgreSQL catalog database, for search load tests.
#
#   bash loadtests/seed_catalog.sh <catalog database url> <N>
#
# Titles combine brands, adjectives, nouns and model numbers, so that words hit from a few
# hundred to hundreds of thousands of products; EANs are valid EAN-13s. Runs in one
# transaction with generate_series, then ANALYZE. Idempotent per N: it skips when the
# database already holds at least N products.
set -euo pipefail
url="$1"
n="$2"
have="$(psql "$url" -XtAc 'SELECT count(*) FROM products')"
if [ "$have" -ge "$n" ]; then
    echo "seed: $have products already there"
    exit 0
fi
echo "seed: inserting $n products"
start=$(date +%s)
psql "$url" -X -v ON_ERROR_STOP=1 -q <<SQL
BEGIN;
CREATE OR REPLACE FUNCTION pg_temp.ean13(payload bigint) RETURNS text LANGUAGE sql IMMUTABLE AS \$\$
  SELECT p || ((10 - (
      SELECT sum(substr(p, i, 1)::int * CASE WHEN i % 2 = 0 THEN 3 ELSE 1 END)
      FROM generate_series(1, 12) AS i) % 10) % 10)::text
  FROM (SELECT lpad(payload::text, 12, '0') AS p) AS x
\$\$;
WITH words AS (
  SELECT
    ARRAY['Samsung','Philips','Bosch','Stabilo','Logitech','Anker','Sony','Tefal','Gardena','Makita',
          'Lego','Braun','Ikea','Hama','Belkin','Xiaomi','Apple','Canon','Brita','Fiskars'] AS brands,
    ARRAY['wireless','compact','pro','mini','ultra','classic','smart','portable','heavy duty','silent',
          'blue','black','white','red','green','steel','bamboo','ergonomic','foldable','rechargeable',
          'waterproof','magnetic','digital','organic','premium','travel','kids','outdoor','office','garden'] AS adjectives,
    ARRAY['mouse','keyboard','usb cable','charger','kettle','toaster','drill','garden hose','pen','notebook',
          'lamp','speaker','headphones','phone case','laptop stand','backpack','bottle','blender','scissors','tape',
          'camera','tripod','battery','router','monitor','chair','desk','mug','knife','pan',
          'galaxy tab','galaxy phone','watch','filter','shears','saw','glue','marker','brush','ruler',
          'plug','adapter','hub','fan','heater','iron','scale','timer','clock','radio'] AS nouns
)
INSERT INTO products (id, ean, sku, title, brand, description, status, attributes, created_at, updated_at)
SELECT gen_random_uuid(),
       pg_temp.ean13(400000000000 + g),
       'SKU-' || g,
       b || ' ' || a || ' ' || n || ' ' || upper(substr(md5(g::text), 1, 2)) || '-' || (g % 997),
       b,
       'seeded product ' || g,
       (ARRAY['draft','active','active','active','inactive'])[1 + g % 5],
       '{}'::jsonb,
       now() - (g || ' seconds')::interval,
       now() - (g || ' seconds')::interval
FROM words,
     generate_series($((have + 1)), $n) AS g,
     LATERAL (SELECT brands[1 + g % 20] AS b, adjectives[1 + (g / 20) % 30] AS a, nouns[1 + (g / 600) % 50] AS n) AS w;
COMMIT;
ANALYZE products;
SQL
echo "seed: done in $(( $(date +%s) - start ))s; $(psql "$url" -XtAc 'SELECT count(*) FROM products') products"
