-- Suppliers, what each one sells us (supplier products) and curated brands.
CREATE TABLE suppliers (
    id BLOB PRIMARY KEY NOT NULL,
    -- short stable code used by import profiles, unique
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    contact TEXT,
    -- ISO 4217, validated by the application
    default_currency TEXT NOT NULL,
    active BOOLEAN NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE supplier_products (
    id BLOB PRIMARY KEY NOT NULL,
    supplier_id BLOB NOT NULL REFERENCES suppliers (id) ON DELETE CASCADE,
    product_id BLOB NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    supplier_sku TEXT NOT NULL,
    -- exact decimal string (SQLite has no exact decimal type); NUMERIC(19,4) on PostgreSQL
    cost_amount TEXT,
    cost_currency TEXT,
    supplier_stock INTEGER CHECK (supplier_stock >= 0),
    lead_time_days INTEGER CHECK (lead_time_days >= 0),
    -- the import job (imports database) that last listed this row
    last_seen_import BLOB,
    last_seen_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (supplier_id, supplier_sku),
    CHECK ((cost_amount IS NULL) = (cost_currency IS NULL))
);
CREATE INDEX supplier_products_product ON supplier_products (product_id);

CREATE TABLE brands (
    id BLOB PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    slug TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
