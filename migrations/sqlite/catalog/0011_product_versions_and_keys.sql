-- Optimistic concurrency, and titles and SKUs compared alike on every backend.
--
-- `version` grows by one with every change of the row: it is the product's ETag, and a write
-- that names the version it read (If-Match) fails with 412 when someone wrote in between.
ALTER TABLE products ADD COLUMN version INTEGER NOT NULL DEFAULT 1;

-- `title_key` orders titles without regard to case or accents: the application writes it with
-- every title (pm_domain::text::sort_key, an ASCII transliteration, lower-cased), so both
-- backends compare the same bytes. Rows written before this migration get lower(title)
-- (ASCII case only); their next write stores the exact key. (Search is already accent- and
-- case-insensitive here: FTS5's unicode61 tokenizer folds both.)
ALTER TABLE products ADD COLUMN title_key TEXT NOT NULL DEFAULT '';
UPDATE products SET title_key = lower(title);
DROP INDEX products_title;
CREATE INDEX products_title_key ON products (title_key, id) WHERE deleted_at IS NULL;

-- Exact SKU lookups ignore case (search's exact hits, keying bulk upserts by SKU).
CREATE INDEX products_sku_lower ON products (lower(sku)) WHERE deleted_at IS NULL;
