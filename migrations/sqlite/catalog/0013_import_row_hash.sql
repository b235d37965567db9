-- What an import last wrote for a supplier's offer, so that a re-import finds an unchanged row
-- with one lookup instead of running the upsert: `row_hash`, the first 64 bits of the SHA-256 of
-- the row as mapped (product, prices, stock, offer) and the warehouse; `row_version`, the
-- product's version once the row was written. A row is unchanged while its hash is the same,
-- the product is live and still at that version (a product write moves it). Writes of the
-- product's prices, stocks or of the offer outside the import clear `row_hash` (the next import
-- writes the row again); NULL: unknown, the row is written.
ALTER TABLE supplier_products ADD COLUMN row_hash INTEGER;
ALTER TABLE supplier_products ADD COLUMN row_version INTEGER;
