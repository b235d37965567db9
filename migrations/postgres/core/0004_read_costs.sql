-- Cost prices become a permission of their own: catalog:read alone no longer shows them.
-- The built-in manager and operator roles get it at the next start (ensure_builtin_roles).
INSERT INTO permissions (name, description) VALUES
    ('catalog:read_costs', 'see cost prices (what suppliers charge)');
