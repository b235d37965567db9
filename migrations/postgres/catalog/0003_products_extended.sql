-- Products gain brand and category references, measures, free attributes and soft delete.
-- No foreign keys on brand_id / primary_category_id: brands and categories live in tables of
-- later migrations. `brand` stays: it is the free text a supplier sends; `brand_id` is the
-- curated brand when known.
ALTER TABLE products
    ADD COLUMN brand_id UUID,
    ADD COLUMN primary_category_id UUID,
    ADD COLUMN weight_grams INTEGER CHECK (weight_grams >= 0),
    ADD COLUMN length_mm INTEGER CHECK (length_mm >= 0),
    ADD COLUMN width_mm INTEGER CHECK (width_mm >= 0),
    ADD COLUMN height_mm INTEGER CHECK (height_mm >= 0),
    ADD COLUMN attributes JSONB NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(attributes) = 'object'),
    -- NULL while live; set when moved to the trash
    ADD COLUMN deleted_at TIMESTAMPTZ;

-- A trashed product does not hold its EAN: a new product may take it (restoring the old one
-- then fails with a conflict).
ALTER TABLE products DROP CONSTRAINT products_ean_key;
CREATE UNIQUE INDEX products_ean_live ON products (ean) WHERE deleted_at IS NULL;

-- keyset pagination per sort order, live rows only
DROP INDEX products_status_created;
CREATE INDEX products_status_id ON products (status, id) WHERE deleted_at IS NULL;
CREATE INDEX products_updated ON products (updated_at, id) WHERE deleted_at IS NULL;
CREATE INDEX products_title ON products (title, id) WHERE deleted_at IS NULL;
CREATE INDEX products_brand_id ON products (brand_id) WHERE brand_id IS NOT NULL;
CREATE INDEX products_primary_category ON products (primary_category_id) WHERE primary_category_id IS NOT NULL;
-- the trash and its purge
CREATE INDEX products_deleted ON products (deleted_at) WHERE deleted_at IS NOT NULL;
