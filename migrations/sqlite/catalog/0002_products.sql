CREATE TABLE products (
    id BLOB PRIMARY KEY NOT NULL,
    -- canonical GTIN (13 digits, or 14 with an indicator digit), validated by the application
    ean TEXT UNIQUE,
    sku TEXT,
    asin TEXT,
    title TEXT NOT NULL,
    description TEXT,
    brand TEXT,
    status TEXT NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'active', 'inactive', 'archived')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX products_sku ON products (sku);
CREATE INDEX products_asin ON products (asin);
CREATE INDEX products_status_created ON products (status, created_at DESC);
