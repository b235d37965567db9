-- Amazon SP-API seller accounts. The client secret and refresh token are stored encrypted
-- (AES-256-GCM with amazon.secrets_key, see storage/src/crypto.rs) and never returned.
CREATE TABLE amazon_api_configs (
    id BLOB PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    client_id TEXT NOT NULL,
    client_secret_enc TEXT NOT NULL,
    refresh_token_enc TEXT NOT NULL,
    -- a marketplace id such as A13V1IB3VIYZZH
    marketplace_id TEXT NOT NULL,
    -- overrides of the regional SP-API host and of the LWA token endpoint
    endpoint TEXT,
    lwa_endpoint TEXT,
    rate_per_sec REAL,
    burst INTEGER,
    is_default BOOLEAN NOT NULL DEFAULT FALSE,
    created_by BLOB,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
