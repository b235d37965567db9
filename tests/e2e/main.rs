//! End-to-end tests: the real application on `127.0.0.1:0`, over HTTP, on SQLite and (when
//! `PM_TEST_DATABASE_URL` is set) PostgreSQL, with Redis and S3 when their URLs are set.

mod helpers;

mod admin;
mod auth;
mod binary;
mod cache;
mod catalog;
mod changes;
mod code2asin;
mod expected;
mod hardening;
mod health;
mod imports;
mod imports_recovery;
mod jobs;
mod media;
mod objects;
mod openapi;
mod products;
mod ws;
