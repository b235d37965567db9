-- Full-text search over title, brand and SKU: an FTS5 table with external content (the text
-- is read from `products`, not stored twice), keyed on `products.seq`, kept in sync by
-- triggers. Prefix indexes of 2 and 3 characters make "galax"-style prefix queries cheap.
CREATE VIRTUAL TABLE products_fts USING fts5(
    title, brand, sku,
    content = 'products',
    content_rowid = 'seq',
    prefix = '2 3'
);

CREATE TRIGGER products_fts_insert AFTER INSERT ON products BEGIN
    INSERT INTO products_fts (rowid, title, brand, sku) VALUES (new.seq, new.title, new.brand, new.sku);
END;

CREATE TRIGGER products_fts_delete AFTER DELETE ON products BEGIN
    INSERT INTO products_fts (products_fts, rowid, title, brand, sku)
        VALUES ('delete', old.seq, old.title, old.brand, old.sku);
END;

CREATE TRIGGER products_fts_update AFTER UPDATE OF title, brand, sku ON products BEGIN
    INSERT INTO products_fts (products_fts, rowid, title, brand, sku)
        VALUES ('delete', old.seq, old.title, old.brand, old.sku);
    INSERT INTO products_fts (rowid, title, brand, sku) VALUES (new.seq, new.title, new.brand, new.sku);
END;

INSERT INTO products_fts (products_fts) VALUES ('rebuild');
