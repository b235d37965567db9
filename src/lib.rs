//! Products Manager: the application assembled.
//!
//! - [`run`]: opens storage, starts the actors, serves HTTP until shutdown, drains, exits.
//! - [`telemetry`]: tracing subscriber setup.
//! - [`cli`]: the command line of the binary.
//!
//! Crates, in dependency order: `pm-config` ← `pm-domain` ← `pm-storage` ← `pm-supervisors` ←
//! `pm-actors` ← `pm-api` ← this one. `ARCHITECTURE.md` maps them.

pub mod cli;
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
        Some(url) => match Redis::connect(url.expose(), Duration::from_secs(5)).await {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!(error = %e, "redis unreachable at start; retrying in the background");
                Redis::lazy(url.expose()).ok()
            }
        },
        None => None,
    };

    let escalated = Arc::new(AtomicBool::new(false));
    let (escalation_tx, mut escalation_rx) = tokio::sync::watch::channel(None::<String>);
    let actors = {
        let escalated = escalated.clone();
        ActorSystem::start(&settings, databases, move |reason| {
            escalated.store(true, Ordering::Release);
            escalation_tx.send_replace(Some(reason));
        })?
    };

    let state = AppState {
        settings: settings.clone(),
        actors: actors.clone(),
        objects,
        redis,
        prometheus: pm_api::routes::metrics::recorder(),
        started: Instant::now(),
        escalated,
    };
    let app = pm_api::router(state);
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "serving");

    // Stop accepting when asked to, or when the root supervisor gives up.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut stop_wait = stop_rx.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
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
