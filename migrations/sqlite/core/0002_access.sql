-- Users, roles and permissions (RBAC), refresh tokens, API keys, notifications, app settings.

CREATE TABLE users (
    id BLOB PRIMARY KEY NOT NULL,
    username TEXT NOT NULL UNIQUE,
    email TEXT UNIQUE,
    display_name TEXT,
    -- argon2id PHC string
    password_hash TEXT NOT NULL,
    is_active BOOLEAN NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    last_login_at TEXT
);

CREATE TABLE roles (
    id BLOB PRIMARY KEY NOT NULL,
    name TEXT NOT NULL UNIQUE,
    description TEXT,
    -- built-in roles (admin, manager, operator, viewer) cannot be deleted or renamed
    builtin BOOLEAN NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);

CREATE TABLE permissions (
    name TEXT PRIMARY KEY NOT NULL,
    description TEXT NOT NULL
);

CREATE TABLE user_roles (
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role_id BLOB NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, role_id)
);

CREATE TABLE role_permissions (
    role_id BLOB NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    permission TEXT NOT NULL REFERENCES permissions (name) ON DELETE CASCADE,
    PRIMARY KEY (role_id, permission)
);

-- Opaque refresh tokens, stored as SHA-256 of the token. Rotation: each use revokes the token
-- and issues a successor in the same family; presenting a revoked token revokes the family.
CREATE TABLE refresh_tokens (
    id BLOB PRIMARY KEY NOT NULL,
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id BLOB NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

-- Scoped API keys for integrations: shown once, stored as SHA-256, looked up by prefix.
CREATE TABLE api_keys (
    id BLOB PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL UNIQUE,
    key_hash TEXT NOT NULL,
    -- JSON array of permission names
    scopes TEXT NOT NULL,
    created_by BLOB,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    revoked_at TEXT,
    last_used_at TEXT
);

CREATE TABLE notifications (
    id BLOB PRIMARY KEY NOT NULL,
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT,
    created_at TEXT NOT NULL,
    read_at TEXT
);
CREATE INDEX notifications_user_unread ON notifications (user_id, read_at, created_at);

CREATE TABLE app_settings (
    key TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by BLOB
);

INSERT INTO permissions (name, description) VALUES
    ('catalog:read', 'read the catalog'),
    ('catalog:write', 'create, change and delete catalog entries'),
    ('imports:read', 'see imports and their jobs'),
    ('imports:write', 'configure imports'),
    ('jobs:run', 'start and cancel imports and other jobs'),
    ('admin', 'users, roles, api keys, settings and the /admin endpoints');
