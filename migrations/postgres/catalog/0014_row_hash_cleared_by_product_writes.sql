-- A product write clears the import hashes of its offers, so that an unchanged row is found
-- by one probe of the offers' index instead of a join with products on every re-import.
-- Every write of a product moves its version (updates, merges, deletes, restores, ASINs,
-- rollbacks); an import's batch writes the product before its offers, so a row it writes gets
-- its new hash after this trigger fired. Prices, stocks and offers written outside an import
-- clear the hashes in the code that writes them (`clear_row_hashes`).
CREATE FUNCTION products_clear_row_hashes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE supplier_products SET row_hash = NULL WHERE product_id = NEW.id AND row_hash IS NOT NULL;
    RETURN NULL;
END
$$;

CREATE TRIGGER products_clear_row_hashes AFTER UPDATE OF version ON products
    FOR EACH ROW WHEN (NEW.version IS DISTINCT FROM OLD.version)
    EXECUTE FUNCTION products_clear_row_hashes();

-- Hashes that the join used to disqualify: their product moved or went away since.
UPDATE supplier_products SET row_hash = NULL
    WHERE row_hash IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM products p WHERE p.id = supplier_products.product_id
        AND p.deleted_at IS NULL AND p.version = supplier_products.row_version);
