//! Typed settings, loaded in layers.
//!
//! - [`settings`]: the settings tree; every field is documented in `config/default.toml`.
//! - [`database`]: the seven logical databases and per-database values.
//! - [`secret`]: a string that never prints.
//! - [`testenv`]: how tests find the real servers they run against (and fail under CI without).
//! - [`load`]: defaults ← `--config` file ← `PM__*` environment, plus `_FILE` secrets and
//!   warnings for unknown variables.

pub mod database;
pub mod load;
pub mod secret;
pub mod settings;
pub mod testenv;

pub use database::{Database, PerDatabase};
pub use load::{load, load_from, ConfigError, Loaded};
pub use secret::Secret;
pub use settings::*;
