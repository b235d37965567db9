//! The client against the stand-in, and the stand-in's own contract (raw HTTP).
//!
//! One test binary for the crate's integration tests: one link step on small machines.

mod client;
mod common;
mod standin_http;
