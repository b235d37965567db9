-- Products gain brand and category references, measures, free attributes and soft delete.
--
-- SQLite cannot drop the inline UNIQUE of `ean` (its automatic index belongs to the table), and
-- the EAN must now be unique among live products only, so the table is rebuilt.
--
-- `seq INTEGER PRIMARY KEY` is new: it aliases the rowid, which the full-text index (0004)
-- keys on. Without it SQLite may renumber rowids on VACUUM and the external-content FTS table
-- would point at the wrong rows. `id` stays the identity: NOT NULL UNIQUE, so it can still be
-- the target of foreign keys.
CREATE TABLE products_new (
    seq INTEGER PRIMARY KEY,
    id BLOB NOT NULL UNIQUE,
    -- canonical GTIN (13 digits, or 14 with an indicator digit), validated by the application
    ean TEXT,
    sku TEXT,
    asin TEXT,
    title TEXT NOT NULL,
    description TEXT,
    -- free text as the supplier spells it; `brand_id` is the curated brand when known
    brand TEXT,
    -- no foreign keys: brands and categories live in tables of later migrations
    brand_id BLOB,
    primary_category_id BLOB,
    status TEXT NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'active', 'inactive', 'archived')),
    weight_grams INTEGER CHECK (weight_grams >= 0),
    length_mm INTEGER CHECK (length_mm >= 0),
    width_mm INTEGER CHECK (width_mm >= 0),
    height_mm INTEGER CHECK (height_mm >= 0),
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object'),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    -- NULL while live; set when moved to the trash
    deleted_at TEXT
);
INSERT INTO products_new (id, ean, sku, asin, title, description, brand, status, created_at, updated_at)
    SELECT id, ean, sku, asin, title, description, brand, status, created_at, updated_at
    FROM products ORDER BY id;
DROP TABLE products;
ALTER TABLE products_new RENAME TO products;

-- A trashed product does not hold its EAN: a new product may take it (restoring the old one
-- then fails with a conflict).
CREATE UNIQUE INDEX products_ean_live ON products (ean) WHERE deleted_at IS NULL;
CREATE INDEX products_sku ON products (sku);
CREATE INDEX products_asin ON products (asin);
-- keyset pagination per sort order, live rows only
CREATE INDEX products_status_id ON products (status, id) WHERE deleted_at IS NULL;
CREATE INDEX products_updated ON products (updated_at, id) WHERE deleted_at IS NULL;
CREATE INDEX products_title ON products (title, id) WHERE deleted_at IS NULL;
CREATE INDEX products_brand_id ON products (brand_id) WHERE brand_id IS NOT NULL;
CREATE INDEX products_primary_category ON products (primary_category_id) WHERE primary_category_id IS NOT NULL;
-- the trash and its purge
CREATE INDEX products_deleted ON products (deleted_at) WHERE deleted_at IS NOT NULL;
