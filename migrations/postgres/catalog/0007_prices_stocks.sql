-- Prices and stocks, and their history: one history row per actual change, with its source.
CREATE TABLE product_prices (
    id UUID PRIMARY KEY,
    product_id UUID NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    price_type TEXT NOT NULL CHECK (price_type IN ('retail', 'cost', 'msrp', 'sale')),
    -- ISO 4217, validated by the application
    currency TEXT NOT NULL,
    amount NUMERIC(19, 4) NOT NULL,
    -- NULL: since always / until further notice
    valid_from TIMESTAMPTZ,
    valid_to TIMESTAMPTZ,
    updated_at TIMESTAMPTZ NOT NULL,
    CHECK (valid_to IS NULL OR valid_from IS NULL OR valid_to > valid_from)
);
-- One price per product, type, currency and start; a missing start counts as one value.
CREATE UNIQUE INDEX product_prices_key
    ON product_prices (product_id, price_type, currency, COALESCE(valid_from, '-infinity'));

CREATE TABLE price_history (
    id UUID PRIMARY KEY,
    product_id UUID NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    price_type TEXT NOT NULL,
    currency TEXT NOT NULL,
    valid_from TIMESTAMPTZ,
    -- NULL old: the price was created; NULL new: it was deleted
    old_amount NUMERIC(19, 4),
    new_amount NUMERIC(19, 4),
    source TEXT NOT NULL CHECK (source IN ('api', 'import')),
    import_job_id UUID,
    changed_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX price_history_product ON price_history (product_id, changed_at);

CREATE TABLE product_stocks (
    id UUID PRIMARY KEY,
    product_id UUID NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    warehouse TEXT NOT NULL,
    quantity BIGINT NOT NULL CHECK (quantity >= 0),
    updated_at TIMESTAMPTZ NOT NULL,
    UNIQUE (product_id, warehouse)
);

CREATE TABLE stock_history (
    id UUID PRIMARY KEY,
    product_id UUID NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    warehouse TEXT NOT NULL,
    -- NULL old: first stock in this warehouse; NULL new: the row was deleted
    old_quantity BIGINT,
    new_quantity BIGINT,
    source TEXT NOT NULL CHECK (source IN ('api', 'import')),
    import_job_id UUID,
    changed_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX stock_history_product ON stock_history (product_id, changed_at);
