//! The seven logical databases of the seeds, and values kept per database.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One of the seven logical databases. Each has its own pool, migrations and store actor; no
/// foreign key crosses two of them (links are UUIDs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Database {
    Core,
    Catalog,
    Imports,
    Exports,
    Media,
    Code2asin,
    Analytics,
}

impl Database {
    pub const ALL: [Database; 7] = [
        Self::Core,
        Self::Catalog,
        Self::Imports,
        Self::Exports,
        Self::Media,
        Self::Code2asin,
        Self::Analytics,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Core => "core",
            Self::Catalog => "catalog",
            Self::Imports => "imports",
            Self::Exports => "exports",
            Self::Media => "media",
            Self::Code2asin => "code2asin",
            Self::Analytics => "analytics",
        }
    }
}

impl fmt::Display for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One value per database, with named fields so that the settings file reads naturally.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PerDatabase<T> {
    pub core: T,
    pub catalog: T,
    pub imports: T,
    pub exports: T,
    pub media: T,
    pub code2asin: T,
    pub analytics: T,
}

impl<T> PerDatabase<T> {
    pub fn get(&self, db: Database) -> &T {
        match db {
            Database::Core => &self.core,
            Database::Catalog => &self.catalog,
            Database::Imports => &self.imports,
            Database::Exports => &self.exports,
            Database::Media => &self.media,
            Database::Code2asin => &self.code2asin,
            Database::Analytics => &self.analytics,
        }
    }

    pub fn get_mut(&mut self, db: Database) -> &mut T {
        match db {
            Database::Core => &mut self.core,
            Database::Catalog => &mut self.catalog,
            Database::Imports => &mut self.imports,
            Database::Exports => &mut self.exports,
            Database::Media => &mut self.media,
            Database::Code2asin => &mut self.code2asin,
            Database::Analytics => &mut self.analytics,
        }
    }

    /// Builds one value per database from a function of the database.
    pub fn from_fn(mut f: impl FnMut(Database) -> T) -> Self {
        Self {
            core: f(Database::Core),
            catalog: f(Database::Catalog),
            imports: f(Database::Imports),
            exports: f(Database::Exports),
            media: f(Database::Media),
            code2asin: f(Database::Code2asin),
            analytics: f(Database::Analytics),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (Database, &T)> {
        Database::ALL.into_iter().map(move |db| (db, self.get(db)))
    }
}
