-- Suppliers, what each one sells us (supplier products) and curated brands.
CREATE TABLE suppliers (
    id UUID PRIMARY KEY,
    -- short stable code used by import profiles, unique
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    contact TEXT,
    -- ISO 4217, validated by the application
    default_currency TEXT NOT NULL,
    active BOOLEAN NOT NULL DEFAULT true,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE supplier_products (
    id UUID PRIMARY KEY,
    supplier_id UUID NOT NULL REFERENCES suppliers (id) ON DELETE CASCADE,
    product_id UUID NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    supplier_sku TEXT NOT NULL,
    cost_amount NUMERIC(19, 4),
    cost_currency TEXT,
    supplier_stock BIGINT CHECK (supplier_stock >= 0),
    lead_time_days INTEGER CHECK (lead_time_days >= 0),
    -- the import job (imports database) that last listed this row
    last_seen_import UUID,
    last_seen_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    UNIQUE (supplier_id, supplier_sku),
    CHECK ((cost_amount IS NULL) = (cost_currency IS NULL))
);
CREATE INDEX supplier_products_product ON supplier_products (product_id);

CREATE TABLE brands (
    id UUID PRIMARY KEY,
    name TEXT NOT NULL,
    slug TEXT NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
