-- Full-text search over title (weight A), brand (B) and SKU (C). The document is a stored
-- generated column, so it is computed once per write and never at query time, and a GIN
-- index over live rows answers `search @@ query` (prefix queries `galax:*` included) without
-- touching the table. The 'simple' configuration: product titles are brand and model names
-- in many languages, where stemming and stop words do more harm than good.
ALTER TABLE products ADD COLUMN search tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('simple', coalesce(title, '')), 'A')
    || setweight(to_tsvector('simple', coalesce(brand, '')), 'B')
    || setweight(to_tsvector('simple', coalesce(sku, '')), 'C')
) STORED;
CREATE INDEX products_search ON products USING GIN (search) WHERE deleted_at IS NULL;
