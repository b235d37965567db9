-- Optimistic concurrency, and titles and SKUs compared alike on every backend.
--
-- `version` grows by one with every change of the row: it is the product's ETag, and a write
-- that names the version it read (If-Match) fails with 412 when someone wrote in between.
ALTER TABLE products ADD COLUMN version BIGINT NOT NULL DEFAULT 1;

-- Accent-insensitive search, as SQLite's FTS5 (unicode61, diacritics removed) already is.
-- unaccent is a trusted extension (PostgreSQL 13+): the database owner may create it.
-- unaccent() itself is only STABLE (its dictionary could change); the wrapper names the
-- dictionary so that it may be IMMUTABLE and used in the generated search document.
CREATE EXTENSION IF NOT EXISTS unaccent;
CREATE FUNCTION pm_unaccent(text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    AS $$ SELECT unaccent('unaccent'::regdictionary, $1) $$;

-- `title_key` orders titles without regard to case or accents: the application writes it with
-- every title (pm_domain::text::sort_key, an ASCII transliteration, lower-cased), so both
-- backends compare the same bytes. Rows written before this migration get the nearest SQL
-- equivalent; their next write stores the exact key.
ALTER TABLE products ADD COLUMN title_key TEXT;
UPDATE products SET title_key = lower(pm_unaccent(title));
ALTER TABLE products ALTER COLUMN title_key SET NOT NULL;
DROP INDEX products_title;
CREATE INDEX products_title_key ON products (title_key, id) WHERE deleted_at IS NULL;

-- Exact SKU lookups ignore case (search's exact hits, keying bulk upserts by SKU).
CREATE INDEX products_sku_lower ON products (lower(sku)) WHERE deleted_at IS NULL;

ALTER TABLE products DROP COLUMN search;
ALTER TABLE products ADD COLUMN search tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('simple', pm_unaccent(coalesce(title, ''))), 'A')
    || setweight(to_tsvector('simple', pm_unaccent(coalesce(brand, ''))), 'B')
    || setweight(to_tsvector('simple', pm_unaccent(coalesce(sku, ''))), 'C')
) STORED;
CREATE INDEX products_search ON products USING GIN (search) WHERE deleted_at IS NULL;
