//! `products-manager import --supplier CODE FILE`: the same import pipeline as the API (the
//! imports queue, the supplier's session, the catalog's bulk lane), run from the shell against
//! the configured databases and object store, with a progress bar. The job is an ordinary
//! import job: it shows in the API, can be rolled back there, and a server running on the same
//! databases sees its changes (its caches are told through Redis when one is configured).

use std::io::Read as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use pm_actors::jobs::{EnqueueJob, GetJob};
use pm_actors::system::ActorSystem;
use pm_config::{Database, Settings};
use pm_storage::jobs::{JobStatus, NewJob, Queue};
use pm_storage::Databases;
use serde_json::{json, Value};

/// What `import` was asked.
#[derive(Debug, Clone)]
pub struct ImportArgs {
    pub supplier: String,
    pub file: PathBuf,
    /// A template of the supplier: its id or its name.
    pub template: Option<String>,
    pub dry_run: bool,
    pub full: bool,
    pub max_errors: Option<u64>,
    /// No progress bar (a log line per stage instead), e.g. when stderr is not a terminal.
    pub quiet: bool,
}

/// Runs one import to its end; the text to print and whether it succeeded.
pub async fn import(settings: Settings, args: ImportArgs) -> anyhow::Result<(String, bool)> {
    let meta = tokio::fs::metadata(&args.file)
        .await
        .with_context(|| format!("reading {}", args.file.display()))?;
    if meta.len() == 0 {
        anyhow::bail!("{} is empty", args.file.display());
    }
    let settings = Arc::new(settings);
    let databases = Databases::open(&settings)
        .await
        .context("opening the databases")?;
    let catalog = pm_storage::catalog::Catalog::new(databases.get(Database::Catalog).clone());
    let supplier = catalog
        .supplier_by_code(&args.supplier)
        .await?
        .with_context(|| format!("no supplier has the code {:?}", args.supplier))?;
    let imports = pm_storage::imports::Imports::new(databases.get(Database::Imports).clone());
    let template_id = match &args.template {
        None => None,
        Some(t) => {
            let all = imports.templates(supplier.id).await?;
            let found = all
                .iter()
                .find(|x| x.id.to_string() == *t || x.name == *t)
                .with_context(|| format!("supplier {} has no template {t:?}", supplier.code))?;
            Some(found.id)
        }
    };
    let objects = pm_storage::object_store::from_settings(&settings)
        .await
        .context("opening the object store")?;

    // The file into the imports bucket, streamed.
    let name = args
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .filter(|e| e.len() <= 5 && e.bytes().all(|b| b.is_ascii_alphanumeric()))
        .unwrap_or_else(|| "bin".into());
    let key = format!(
        "{}/{}.{ext}",
        chrono::Utc::now().format("%Y/%m/%d"),
        uuid::Uuid::now_v7()
    );
    let bucket = settings.object_store.buckets.imports.clone();
    let file = tokio::fs::File::open(&args.file).await?;
    let stream: pm_storage::object_store::ByteStream = Box::pin(tokio_util::io::ReaderStream::new(file));
    objects
        .put(&bucket, &key, stream, None)
        .await
        .context("storing the file")?;
    // Rows to expect (a text file's lines), for the bar; a spreadsheet shows a spinner.
    let lines = if matches!(ext.as_str(), "csv" | "tsv" | "txt") {
        let path = args.file.clone();
        tokio::task::spawn_blocking(move || count_lines(&path))
            .await?
            .ok()
    } else {
        None
    };

    // Servers on the same databases drop what this import makes stale (through Redis).
    let redis = match &settings.cache.redis_url {
        Some(url) => {
            let client = pm_storage::redis::client(url.expose(), settings.cache.redis_ca_file.as_deref())?;
            pm_storage::redis::Redis::connect(client, Duration::from_secs(5))
                .await
                .ok()
        }
        None => None,
    };
    let cache = pm_storage::cache::Cache::start(&settings.cache, redis).await?;
    let services = pm_actors::Services {
        objects,
        cache: cache.clone(),
        secrets: crate::amazon_cipher(&settings)?,
    };
    let actors = ActorSystem::start(&settings, databases, services, |reason| {
        tracing::error!(%reason, "the actor system gave up");
    })?;
    actors.changes.add_sink(pm_api::sinks::EdgeCaches {
        cache,
        api_keys: pm_api::sinks::ApiKeyCache::default(),
        generations: pm_api::sinks::Generations::new(Duration::from_secs(1)),
    });

    let payload = json!({
        "supplier_id": supplier.id, "bucket": bucket, "key": key, "file_name": name,
        "size": meta.len(), "dry_run": args.dry_run, "template_id": template_id,
        "mode": if args.full { "full" } else { "delta" }, "max_errors": args.max_errors,
    });
    let gate = actors.jobs.gate(Queue::Imports);
    let job = gate
        .send(EnqueueJob(NewJob {
            kind: pm_actors::jobs::import::KIND.into(),
            payload,
            group_key: Some(format!("supplier:{}", supplier.id)),
            priority: 0,
            max_attempts: None,
            delay: None,
            created_by: None,
        }))
        .await?;

    let bar = if args.quiet {
        indicatif::ProgressBar::hidden()
    } else {
        match lines {
            Some(n) => indicatif::ProgressBar::new(n.saturating_sub(1)),
            None => indicatif::ProgressBar::new_spinner(),
        }
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} rows ({per_sec}) {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let mut last_stage = String::new();
    let done = loop {
        let j = gate.send(GetJob(job.id)).await?;
        let p = j.progress.clone().unwrap_or(Value::Null);
        let c = &p["counters"];
        bar.set_position(c["rows_read"].as_u64().unwrap_or(0));
        let stage = p["stage"].as_str().unwrap_or("queued").to_owned();
        bar.set_message(format!(
            "{stage}: {} created, {} updated, {} unchanged, {} rejected",
            c["created"].as_u64().unwrap_or(0),
            c["updated"].as_u64().unwrap_or(0),
            c["unchanged"].as_u64().unwrap_or(0),
            c["rejected"].as_u64().unwrap_or(0)
        ));
        if args.quiet && stage != last_stage {
            tracing::info!(job = %j.id, stage = %stage, "import");
            last_stage = stage;
        }
        let waiting = j.status == JobStatus::Queued && p["awaiting"] == "mapping";
        if j.status.is_finished() || waiting {
            break j;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    bar.finish_and_clear();
    let text = summary(&done, started.elapsed());
    let ok = done.status == JobStatus::Succeeded;
    if !actors.shutdown(Duration::from_secs(30)).await {
        tracing::warn!("mailboxes not drained within 30 s");
    }
    Ok((text, ok))
}

/// What is printed at the end.
fn summary(job: &pm_storage::jobs::Job, took: Duration) -> String {
    let mut out = format!(
        "import {} of {}: {:?}",
        job.id,
        job.payload["file_name"].as_str().unwrap_or("?"),
        job.status
    );
    if let Some(r) = &job.result {
        let c = &r["counters"];
        let n = |k: &str| c[k].as_u64().unwrap_or(0);
        out.push_str(&format!(
            "\n  rows read {}, created {}, updated {}, unchanged {}, rejected {}\n  prices changed {}, stocks changed {}, offers changed {}\n  {:.1} s, {} rows/s",
            n("rows_read"),
            n("created"),
            n("updated"),
            n("unchanged"),
            n("rejected"),
            n("prices_changed"),
            n("stocks_changed"),
            n("offers_changed"),
            took.as_secs_f64(),
            r["rows_per_sec"].as_u64().unwrap_or(0)
        ));
        if r["dry_run"] == json!(true) {
            out.push_str(&format!(
                "\n  dry run: would create {}, would update {}, would leave {} unchanged; nothing was written",
                n("would_create"),
                n("would_update"),
                n("would_be_unchanged")
            ));
        }
        if n("rejected") > 0 {
            out.push_str(&format!(
                "\n  the rejected rows, with their line and reason: GET /api/v1/imports/jobs/{}/errors.csv",
                job.id
            ));
        }
    }
    if let Some(p) = job.progress.as_ref().filter(|p| p["awaiting"] == "mapping") {
        out.push_str(&format!(
            "\n  waiting for a mapping: {}\n  give one with --template, or POST /api/v1/imports/jobs/{}/mapping",
            p["message"].as_str().unwrap_or_default(),
            job.id
        ));
    }
    if let Some(e) = &job.last_error {
        if job.status != JobStatus::Succeeded {
            out.push_str(&format!("\n  error: {e}"));
        }
    }
    out
}

/// Lines of a file (newline bytes, plus a last line without one), read in blocks.
fn count_lines(path: &std::path::Path) -> std::io::Result<u64> {
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let (mut n, mut last) = (0u64, b'\n');
    loop {
        let read = f.read(&mut buf)?;
        if read == 0 {
            break;
        }
        n += buf[..read].iter().filter(|b| **b == b'\n').count() as u64;
        last = buf[read - 1];
    }
    Ok(n + u64::from(last != b'\n'))
}
