-- Search-engine fields, one row per product; the slug is the product's URL name, unique.
CREATE TABLE product_seo (
    product_id BLOB PRIMARY KEY NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    slug TEXT NOT NULL UNIQUE,
    meta_title TEXT,
    meta_description TEXT,
    updated_at TEXT NOT NULL
);
