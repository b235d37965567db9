-- What each import job did to products and supplier offers, so that it can be rolled back:
-- written in the transaction of the batch that made the change. Prices and stocks need no
-- journal: their history rows carry the job id.
--
-- A product the job created (`created`), or one it updated with the row as it was before
-- (`before`, the product as JSON); `version_after` is the product's version once the job wrote
-- it: a rollback touches a product only while it is still at that version (nobody wrote since).
CREATE TABLE import_product_changes (
    job_id BLOB NOT NULL,
    product_id BLOB NOT NULL,
    created BOOLEAN NOT NULL,
    before TEXT,
    version_after INTEGER NOT NULL,
    changed_at TEXT NOT NULL,
    PRIMARY KEY (job_id, product_id)
);

-- The same for supplier offers, keyed by (supplier, supplier SKU).
CREATE TABLE import_offer_changes (
    job_id BLOB NOT NULL,
    supplier_id BLOB NOT NULL,
    supplier_sku TEXT NOT NULL,
    created BOOLEAN NOT NULL,
    before TEXT,
    changed_at TEXT NOT NULL,
    PRIMARY KEY (job_id, supplier_id, supplier_sku)
);

-- Rollbacks and full imports read history by job.
CREATE INDEX price_history_job ON price_history (import_job_id) WHERE import_job_id IS NOT NULL;
CREATE INDEX stock_history_job ON stock_history (import_job_id) WHERE import_job_id IS NOT NULL;
CREATE INDEX supplier_products_seen ON supplier_products (supplier_id, last_seen_import);
