//! Products Manager: the application assembled.
//!
//! - [`run`]: opens storage, starts the actors, serves HTTP until shutdown, drains, exits.
//! - [`telemetry`]: tracing subscriber setup.
//! - [`cli`]: the command line of the binary.
//!
//! Crates, in dependency order: `pm-config` ← `pm-domain` ← `pm-storage` ← `pm-supervisors` ←
//! `pm-actors` ← `pm-api` ← this one. `ARCHITECTURE.md` maps them.

pub mod cli;
pub mod import_cli;
pub mod telemetry;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use pm_actors::ActorSystem;
use pm_api::AppState;
use pm_config::Settings;
use pm_storage::redis::Redis;
use pm_storage::Databases;
use tokio::net::TcpListener;

/// How the application ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Asked to stop, and stopped cleanly.
    Stopped,
    /// The root supervisor gave up; the process should exit non-zero so that it is restarted.
    Escalated(String),
}

/// Runs the service on `listener` until `shutdown` completes or the root supervisor gives up.
///
/// Must be called inside an actix `System` running on a tokio multi-thread runtime (see
/// [`block_on`]); actors need the former, the worker pool the latter.
pub async fn run(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Outcome> {
    let settings = Arc::new(settings);
    let databases = Databases::open(&settings)
        .await
        .context("opening the databases")?;
    let objects = pm_storage::object_store::from_settings(&settings)
        .await
        .context("opening the object store")?;
    let redis = match &settings.cache.redis_url {
        // Redis is optional: when it is down at start, the service runs and health says so.
        // A bad URL or CA file is a configuration error and stops the start.
        Some(url) => {
            let client = pm_storage::redis::client(url.expose(), settings.cache.redis_ca_file.as_deref())
                .context("cache.redis_url")?;
            match Redis::connect(client.clone(), Duration::from_secs(5)).await {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::warn!(error = %e, "redis unreachable at start; retrying in the background");
                    Redis::lazy(client).ok()
                }
            }
        }
        None => None,
    };

    // The recorder first: the cache builds its counter handles against it.
    let prometheus = pm_api::routes::metrics::recorder();
    let cache = pm_storage::cache::Cache::start(&settings.cache, redis.clone())
        .await
        .context("starting the cache")?;

    let escalated = Arc::new(AtomicBool::new(false));
    let (escalation_tx, mut escalation_rx) = tokio::sync::watch::channel(None::<String>);
    let actors = {
        let escalated = escalated.clone();
        let services = pm_actors::Services {
            objects: objects.clone(),
            cache: cache.clone(),
            secrets: amazon_cipher(&settings)?,
        };
        ActorSystem::start(&settings, databases, services, move |reason| {
            escalated.store(true, Ordering::Release);
            escalation_tx.send_replace(Some(reason));
        })?
    };

    // Before any write: every committed write empties what it made stale.
    let api_keys = pm_api::sinks::ApiKeyCache::default();
    let generations =
        pm_api::sinks::Generations::new(Duration::from_secs(settings.auth.revocation_check_secs));
    actors.changes.add_sink(pm_api::sinks::EdgeCaches {
        cache: cache.clone(),
        api_keys: api_keys.clone(),
        generations: generations.clone(),
    });
    bootstrap_access(&settings, &actors).await?;
    let a = &settings.auth;
    let keys = pm_api::auth::Keys::new(
        &jwt_secret(&settings)?,
        &a.issuer,
        Duration::from_secs(a.access_token_ttl_secs),
        Duration::from_secs(a.refresh_token_ttl_secs),
        Duration::from_secs(a.clock_leeway_secs),
    );
    let mut limits = pm_api::auth::limits::LoginLimits::new(
        a.login_attempts_per_user_per_minute,
        a.login_attempts_per_ip_per_minute,
    );
    limits.trusted = settings
        .server
        .trusted_proxies
        .iter()
        .map(|p| p.parse())
        .collect::<Result<_, String>>()
        .map_err(|e| anyhow::anyhow!("server.trusted_proxies: {e}"))?;
    let login_limits = Arc::new(limits);

    spawn_trash_purge(&settings, &actors);

    let state = AppState::new(pm_api::state::AppInner {
        settings: settings.clone(),
        actors: actors.clone(),
        objects,
        redis,
        prometheus,
        cache,
        started: Instant::now(),
        escalated,
        keys,
        login_limits,
        metrics_token: a.metrics_token.clone(),
        api_keys,
        generations,
    });
    let app = pm_api::router(state);
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "serving");

    // Stop accepting when asked to, or when the root supervisor gives up.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut stop_wait = stop_rx.clone();
    let server = tokio::spawn(async move {
        // The peer address feeds the per-address login limit.
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = stop_wait.wait_for(|s| *s).await;
        })
        .await
    });
    tokio::pin!(shutdown);
    let outcome = tokio::select! {
        () = &mut shutdown => Outcome::Stopped,
        r = escalation_rx.wait_for(Option::is_some) => {
            let reason = r.map(|r| r.clone().unwrap_or_default()).unwrap_or_default();
            let linger = Duration::from_millis(settings.server.escalation_linger_ms);
            tracing::error!(%reason, ?linger, "root supervisor gave up; health is red, exiting after the linger");
            tokio::select! {
                () = tokio::time::sleep(linger) => {}
                () = &mut shutdown => {}
            }
            Outcome::Escalated(reason)
        }
    };
    tracing::info!("shutting down: no new connections");
    stop_tx.send_replace(true);
    drop(stop_rx);

    // In-flight requests get the grace period; then the mailboxes drain in what remains.
    let grace = Duration::from_secs(settings.server.shutdown_grace_secs);
    let deadline = Instant::now() + grace;
    match tokio::time::timeout(grace, server).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => tracing::error!(error = %e, "server error"),
        Ok(Err(e)) => tracing::error!(error = %e, "server task failed"),
        Err(_) => tracing::warn!("in-flight requests still running after the grace period; dropping them"),
    }
    let left = deadline.saturating_duration_since(Instant::now());
    if !actors.shutdown(left).await {
        tracing::warn!("mailboxes not drained within the grace period");
    }
    tracing::info!("stopped");
    Ok(outcome)
}

/// Purges products deleted longer ago than the retention, now and then at every interval.
/// Several instances may run it at once: the delete is idempotent.
fn spawn_trash_purge(settings: &Settings, actors: &ActorSystem) {
    let catalog = actors.stores.catalog.clone();
    let retention = chrono::Duration::days(i64::from(settings.catalog.trash_retention_days));
    let every = Duration::from_secs(settings.catalog.trash_purge_interval_secs.max(1));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match catalog
                .send(pm_actors::changes::By::by(
                    pm_actors::store::catalog::PurgeTrash(retention),
                    pm_actors::changes::Origin::system("trash purge"),
                ))
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::info!(purged = n, "purged products from the trash"),
                Err(pm_supervisors::CallError::Stopped { .. }) => break,
                Err(e) => tracing::warn!(error = %e, "trash purge failed"),
            }
        }
    });
}

/// `products-manager admin …`: sets a password or creates an admin on the core database
/// directly, records it in the activity log, and returns what to print.
pub async fn admin(settings: &Settings, command: cli::AdminCommand) -> anyhow::Result<String> {
    use pm_config::Database;
    use pm_storage::core::users::{NewUser, UserPatch};
    let (username, from_stdin) = match &command {
        cli::AdminCommand::ResetPassword {
            username,
            password_stdin,
        }
        | cli::AdminCommand::CreateAdmin {
            username,
            password_stdin,
        } => (username.clone(), *password_stdin),
    };
    let (password, generated) = if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        (line.trim_end_matches(['\n', '\r']).to_owned(), false)
    } else {
        (pm_api::auth::password::generate(), true)
    };
    pm_api::auth::password::check_strength(&password).map_err(|e| anyhow::anyhow!("{e}"))?;
    let password_hash = pm_api::auth::password::hash(password.clone())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let core = pm_storage::core::Core::new(pm_storage::Db::open(settings, Database::Core).await?);
    core.ensure_builtin_roles().await?;
    let (action, id) = match command {
        cli::AdminCommand::ResetPassword { .. } => {
            let login = core
                .find_login(&username)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no user {username:?}"))?;
            let patch = UserPatch {
                password_hash: Some(password_hash),
                is_active: Some(true),
                ..Default::default()
            };
            core.update_user(login.id, patch).await?;
            core.revoke_user_tokens(login.id).await?;
            ("reset_password", login.id)
        }
        cli::AdminCommand::CreateAdmin { .. } => {
            let user = NewUser {
                username: username.clone(),
                password_hash,
                roles: vec!["admin".into()],
                ..Default::default()
            };
            ("create", core.create_user(user).await?.id)
        }
    };
    let analytics =
        pm_storage::analytics::Analytics::new(pm_storage::Db::open(settings, Database::Analytics).await?);
    let entry = pm_storage::analytics::Activity {
        id: uuid::Uuid::now_v7(),
        user_id: None,
        api_key_id: None,
        actor_name: "system:cli".into(),
        action: action.into(),
        entity: "user".into(),
        entity_id: Some(id.to_string()),
        request_id: None,
        at: chrono::Utc::now(),
    };
    if let Err(e) = analytics.record_activity(&entry).await {
        tracing::warn!(error = %e, "activity not recorded");
    }
    let mut out = match action {
        "create" => format!("created admin user {username}"),
        _ => format!("password of {username} set, account active, sessions ended"),
    };
    if generated {
        out.push_str(&format!("\npassword: {password}"));
    }
    Ok(out)
}

/// Ensures the built-in roles, and creates the `admin` user when there is no user at all.
async fn bootstrap_access(settings: &Settings, actors: &ActorSystem) -> anyhow::Result<()> {
    use pm_actors::store::core::{CountUsers, CreateUser, EnsureBuiltinRoles};
    let core = &actors.stores.core;
    core.send(EnsureBuiltinRoles)
        .await
        .context("creating the built-in roles")?;
    if core.send(CountUsers).await? > 0 {
        if settings.auth.bootstrap_admin_password.is_some() {
            tracing::warn!(
                "auth.bootstrap_admin_password is set but users exist: it is ignored (it only \
                 creates the first admin); to recover an account run `products-manager admin reset-password <user>`"
            );
        }
        return Ok(());
    }
    let (password, generated) = match &settings.auth.bootstrap_admin_password {
        Some(p) => (p.expose().to_owned(), false),
        None => (pm_api::auth::password::generate(), true),
    };
    let password_hash = pm_api::auth::password::hash(password.clone())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let user = pm_storage::core::users::NewUser {
        username: "admin".into(),
        display_name: Some("Administrator".into()),
        password_hash,
        roles: vec!["admin".into()],
        ..Default::default()
    };
    let origin = pm_actors::changes::Origin::system("bootstrap");
    match core
        .send(pm_actors::changes::By::by(CreateUser { user }, origin))
        .await
    {
        Ok(_) => {}
        // Another instance starting at the same moment created it.
        Err(pm_supervisors::CallError::Handler(pm_storage::StoreError::Conflict { .. })) => return Ok(()),
        Err(e) => return Err(anyhow::anyhow!("creating the admin user: {e}")),
    }
    if generated {
        let path = settings.storage.data_dir.join("initial-admin-password");
        write_private(&path, &password)?;
        tracing::warn!(
            path = %path.display(),
            password = %password,
            "created user admin with a generated password; change it after the first login"
        );
    } else {
        tracing::info!("created user admin with the configured bootstrap password");
    }
    Ok(())
}

/// The access-token signing key: configured, or made once and kept in the data directory.
fn jwt_secret(settings: &Settings) -> anyhow::Result<Vec<u8>> {
    if let Some(s) = &settings.auth.jwt_secret {
        return Ok(s.expose().as_bytes().to_vec());
    }
    let path = settings.storage.data_dir.join("jwt-secret");
    match std::fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => Ok(s.trim().as_bytes().to_vec()),
        _ => {
            let secret = format!(
                "{}{}",
                pm_api::auth::password::generate(),
                pm_api::auth::password::generate()
            );
            write_private(&path, &secret)?;
            tracing::info!(path = %path.display(), "generated the access token signing key");
            Ok(secret.into_bytes())
        }
    }
}

/// The key of stored Amazon secrets: configured, or made once and kept in the data directory.
pub(crate) fn amazon_cipher(settings: &Settings) -> anyhow::Result<pm_storage::crypto::SecretCipher> {
    if let Some(s) = &settings.amazon.secrets_key {
        return Ok(pm_storage::crypto::SecretCipher::from_key_material(
            s.expose().as_bytes(),
        ));
    }
    let path = settings.storage.data_dir.join("amazon-secrets-key");
    let key = match std::fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => s.trim().to_owned(),
        _ => {
            let key = format!(
                "{}{}",
                pm_api::auth::password::generate(),
                pm_api::auth::password::generate()
            );
            write_private(&path, &key)?;
            tracing::info!(path = %path.display(), "generated the key of stored amazon secrets");
            key
        }
    };
    Ok(pm_storage::crypto::SecretCipher::from_key_material(
        key.as_bytes(),
    ))
}

/// Writes a file only its owner can read.
fn write_private(path: &std::path::Path, content: &str) -> anyhow::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(content.as_bytes())?;
    Ok(())
}

/// Runs `fut` the way the application needs: inside an actix `System` on a tokio multi-thread
/// runtime. (Under `#[tokio::main]` starting an actor panics; see DESIGN.)
pub fn block_on<F: Future>(fut: F) -> F::Output {
    actix_rt::System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("pm-worker")
            .build()
            .expect("the tokio runtime builds")
    })
    .block_on(fut)
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("sigint received"),
        () = term => tracing::info!("sigterm received"),
    }
}
