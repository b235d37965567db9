-- Product images: the originals, their thumbnails, what probing found, and QR codes. Times are
-- milliseconds since the Unix epoch, the same on both backends. Products live in the catalog
-- database: product_id is not a foreign key (no keys across databases).

-- One row per original image of a product. The object is
-- products/{product_id[0:2]}/{product_id}/{sha256}.{ext} in the product-images bucket; the same
-- bytes for the same product are one row.
CREATE TABLE media_files (
    id UUID PRIMARY KEY NOT NULL,
    product_id UUID NOT NULL,
    -- hex SHA-256 of the original's bytes
    sha256 TEXT NOT NULL,
    -- from the sniffed format, never the file name: jpg, png, webp, gif, tiff
    ext TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    -- order among the product's images, from 0
    position BIGINT NOT NULL,
    is_main BOOLEAN NOT NULL DEFAULT FALSE,
    -- where the original was fetched from, for images given by url
    source_url TEXT,
    status TEXT NOT NULL CHECK (status IN ('queued', 'processing', 'done', 'failed')),
    -- why processing failed
    error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX media_files_product_sha ON media_files (product_id, sha256);
CREATE INDEX media_files_product_position ON media_files (product_id, position);
CREATE INDEX media_files_sha ON media_files (sha256);

-- The thumbnails of an original, one per size name (small, medium, large).
CREATE TABLE media_thumbnails (
    media_id UUID NOT NULL,
    size TEXT NOT NULL,
    key TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    bytes BIGINT NOT NULL,
    content_type TEXT NOT NULL,
    PRIMARY KEY (media_id, size)
);

-- What probing the original found. exif holds a JSON object of the fields kept: never GPS
-- position nor personal fields (owner, serial numbers, ...).
CREATE TABLE media_metadata (
    media_id UUID PRIMARY KEY NOT NULL,
    format TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    color_type TEXT NOT NULL,
    -- JSON
    exif TEXT
);

-- A product's QR code: what it encodes and where its PNG and SVG are stored.
CREATE TABLE product_qrcodes (
    product_id UUID PRIMARY KEY NOT NULL,
    target TEXT NOT NULL,
    png_key TEXT NOT NULL,
    svg_key TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
