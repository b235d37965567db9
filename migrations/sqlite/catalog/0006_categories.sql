-- Categories as a tree with materialised paths, and product categories per taxonomy.
CREATE TABLE categories (
    id BLOB PRIMARY KEY NOT NULL,
    -- NO ACTION (not RESTRICT, which SQLite reports as a trigger error): a category with
    -- subcategories is not deleted behind the caller's back
    parent_id BLOB REFERENCES categories (id),
    name TEXT NOT NULL,
    slug TEXT NOT NULL,
    -- ids from the root, `/<root-id>/<child-id>/`: a subtree is `path LIKE '<node path>%'`.
    -- NOCASE lets SQLite's LIKE (case-insensitive by default) use the index; ids are
    -- lower-case hex, so nothing changes for equality.
    path TEXT NOT NULL COLLATE NOCASE,
    -- slugs from the root, `electronics/phones`: unique, hence unique slugs among siblings
    slug_path TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX categories_path ON categories (path);
CREATE INDEX categories_parent ON categories (parent_id, id);

CREATE TABLE product_categories (
    product_id BLOB NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    category_id BLOB NOT NULL REFERENCES categories (id) ON DELETE CASCADE,
    -- internal, amazon, google, ...
    taxonomy TEXT NOT NULL,
    PRIMARY KEY (product_id, category_id, taxonomy)
);
CREATE INDEX product_categories_category ON product_categories (category_id, taxonomy);
