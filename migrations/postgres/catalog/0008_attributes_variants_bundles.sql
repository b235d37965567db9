-- Typed attributes, variants of a parent product, bundles of products.
CREATE TABLE product_attributes (
    product_id UUID NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value_type TEXT NOT NULL CHECK (value_type IN ('string', 'number', 'boolean', 'json')),
    -- the value as text: a decimal string, 'true'/'false', or JSON
    value TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (product_id, key)
);

-- A variant is a product whose parent is another product; `axes` is a JSON object of axis to
-- value (`{"colour":"red","size":"M"}`) with sorted keys, so one combination has one spelling.
CREATE TABLE product_variants (
    product_id UUID PRIMARY KEY REFERENCES products (id) ON DELETE CASCADE,
    parent_id UUID NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    axes TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    CHECK (product_id <> parent_id),
    UNIQUE (parent_id, axes)
);

-- A bundle is a product sold as a set of other products.
CREATE TABLE bundles (
    product_id UUID PRIMARY KEY REFERENCES products (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE bundle_items (
    bundle_id UUID NOT NULL REFERENCES bundles (product_id) ON DELETE CASCADE,
    product_id UUID NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (bundle_id, product_id),
    CHECK (bundle_id <> product_id)
);
CREATE INDEX bundle_items_product ON bundle_items (product_id);
