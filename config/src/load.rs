//! Layered loading: built-in defaults ← optional file ← `PM__*` environment variables.

use std::path::{Path, PathBuf};

use figment::providers::{Format, Serialized, Toml};
use figment::value::Value;
use figment::Figment;

use crate::Settings;

/// The built-in defaults: `config/default.toml`, embedded at build time.
pub const DEFAULTS_TOML: &str = include_str!("../default.toml");

/// Prefix of the environment variables read as settings; `__` separates the levels.
pub const ENV_PREFIX: &str = "PM__";

/// Suffix that makes a variable name a file to read the value from.
const FILE_SUFFIX: &str = "_FILE";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("cannot read secret file {path} named by {var}: {source}")]
    SecretFile {
        var: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid settings: {0}")]
    Invalid(#[from] Box<figment::Error>),
    /// Bad values, each named by where it came from: the variable (`PM__SERVER__BIND`), or the
    /// key and the file.
    #[error("invalid settings: {}", .0.join("; "))]
    Values(Vec<String>),
}

/// Effective settings plus what the operator should be told once logging is up.
#[derive(Debug)]
pub struct Loaded {
    pub settings: Settings,
    pub warnings: Vec<String>,
}

/// Loads settings from the defaults, `file` and the process environment.
pub fn load(file: Option<&Path>) -> Result<Loaded, ConfigError> {
    load_from(file, std::env::vars())
}

/// Loads settings from the defaults, `file` and the given environment (for tests).
pub fn load_from(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Loaded, ConfigError> {
    let mut figment = Figment::from(Toml::string(DEFAULTS_TOML));
    if let Some(path) = file {
        if !path.exists() {
            return Err(ConfigError::MissingFile(path.to_owned()));
        }
        figment = figment.merge(Toml::file(path));
    }
    let known = known_keys(&figment)?;
    let mut warnings = Vec::new();
    let mut vars: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect();
    vars.sort();
    // Which variable set which key, to name it in errors.
    let mut set_by: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    for (var, raw) in vars {
        let (path, from_file) = match var[ENV_PREFIX.len()..].strip_suffix(FILE_SUFFIX) {
            Some(p) => (p.to_ascii_lowercase(), true),
            None => (var[ENV_PREFIX.len()..].to_ascii_lowercase(), false),
        };
        let segments: Vec<&str> = path.split("__").collect();
        if !is_known(&known, &segments) {
            warnings.push(format!("ignoring unknown setting variable {var}"));
            continue;
        }
        let value: Value = if from_file {
            let file = PathBuf::from(&raw);
            let text = std::fs::read_to_string(&file).map_err(|source| ConfigError::SecretFile {
                var: var.clone(),
                path: file,
                source,
            })?;
            Value::from(text.trim_end_matches(['\n', '\r']).to_owned())
        } else {
            raw.parse().unwrap_or_else(|never| match never {})
        };
        set_by.insert(segments.join("."), var.clone());
        figment = figment.merge(Serialized::default(&segments.join("."), value));
    }
    let settings: Settings = figment.extract().map_err(|e| {
        let messages: Vec<String> = e
            .into_iter()
            .map(|err| {
                let key = err.path.join(".");
                match set_by.get(&key) {
                    Some(var) => format!("{var}: {}", err.kind),
                    None => match file {
                        Some(f) if !key.is_empty() => {
                            format!("{key} (in {} or the defaults): {}", f.display(), err.kind)
                        }
                        _ if !key.is_empty() => format!("{key}: {}", err.kind),
                        _ => err.kind.to_string(),
                    },
                }
            })
            .collect();
        ConfigError::Values(messages)
    })?;
    Ok(Loaded { settings, warnings })
}

/// The key tree of the settings: every field, optional ones included (as null).
fn known_keys(figment: &Figment) -> Result<serde_json::Value, ConfigError> {
    let settings: Settings = figment.extract().map_err(Box::new)?;
    Ok(serde_json::to_value(settings).unwrap_or_default())
}

fn is_known(tree: &serde_json::Value, path: &[&str]) -> bool {
    match path.split_first() {
        None => !tree.is_object(),
        Some((head, rest)) => tree.get(*head).is_some_and(|sub| is_known(sub, rest)),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::{Database, DatabaseLocation, LogFormat, ObjectStoreBackend};

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_complete_and_match_the_seeds() {
        let s = load_from(None, env(&[])).unwrap().settings;
        assert_eq!(s.server.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(s.storage.data_dir, PathBuf::from("./data"));
        let pools: Vec<u32> = Database::ALL.iter().map(|d| *s.database.pools.get(*d)).collect();
        assert_eq!(pools, [5, 20, 15, 10, 10, 10, 10]);
        assert_eq!(s.database.pool_timeout_secs, 30);
        assert_eq!(s.database.pool_recycle_secs, 3600);
        assert!(s.database.pool_pre_ping);
        assert_eq!(s.database.max_overflow, 10);
        assert_eq!(s.object_store.backend, ObjectStoreBackend::Fs);
        assert!(s.database.url.is_none());
        assert_eq!(
            s.database_location(Database::Catalog),
            DatabaseLocation::Sqlite(PathBuf::from("./data/catalog.db"))
        );
    }

    #[test]
    fn file_then_env_override_and_unknown_vars_warn() {
        let dir = std::env::temp_dir().join(format!("pm-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pm.toml");
        std::fs::write(
            &file,
            "[server]\nbind = \"0.0.0.0:9000\"\n[log]\nformat = \"json\"\n",
        )
        .unwrap();
        let secret = dir.join("redis");
        std::fs::File::create(&secret)
            .unwrap()
            .write_all(b"redis://:pw@10.0.0.1:6379\n")
            .unwrap();
        let loaded = load_from(
            Some(&file),
            env(&[
                ("PM__SERVER__BIND", "127.0.0.1:7000"),
                ("PM__DATABASE__POOLS__CATALOG", "40"),
                ("PM__DATABASE__URL", "postgres://u:pw@db:5432"),
                ("PM__CACHE__REDIS_URL_FILE", secret.to_str().unwrap()),
                ("PM__SERVER__BINDD", "x"),
                ("PM__NOPE", "x"),
                ("OTHER", "ignored"),
            ]),
        )
        .unwrap();
        let s = loaded.settings;
        assert_eq!(s.server.bind.to_string(), "127.0.0.1:7000");
        assert_eq!(s.log.format, LogFormat::Json);
        assert_eq!(s.database.pools.catalog, 40);
        assert_eq!(
            s.cache.redis_url.as_ref().unwrap().expose(),
            "redis://:pw@10.0.0.1:6379"
        );
        assert_eq!(
            loaded.warnings,
            vec![
                "ignoring unknown setting variable PM__NOPE".to_string(),
                "ignoring unknown setting variable PM__SERVER__BINDD".to_string(),
            ]
        );
        match s.database_location(Database::Imports) {
            DatabaseLocation::Postgres { url, create } => {
                assert_eq!(url.expose(), "postgres://u:pw@db:5432/pm_imports");
                assert_eq!(create.as_deref(), Some("pm_imports"));
            }
            other => panic!("expected postgres, got {other:?}"),
        }
    }

    #[test]
    fn bad_values_are_errors_that_name_the_key() {
        let err = load_from(None, env(&[("PM__DATABASE__POOLS__CORE", "many")])).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("PM__DATABASE__POOLS__CORE"), "{msg}");
        let err = load_from(Some(Path::new("/nonexistent/pm.toml")), env(&[])).unwrap_err();
        assert!(matches!(err, ConfigError::MissingFile(_)));
        let err = load_from(None, env(&[("PM__CACHE__REDIS_URL_FILE", "/nonexistent/secret")])).unwrap_err();
        assert!(err.to_string().contains("PM__CACHE__REDIS_URL_FILE"), "{err}");
    }

    #[test]
    fn unknown_keys_in_a_file_are_errors() {
        let dir = std::env::temp_dir().join(format!("pm-config-unknown-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pm.toml");
        std::fs::write(&file, "[server]\nbnd = \"0.0.0.0:9000\"\n").unwrap();
        let err = load_from(Some(&file), env(&[])).unwrap_err();
        assert!(err.to_string().contains("bnd"), "{err}");
    }
}
