//! The thin binary: parse the command line, load settings, set up telemetry, hand over to the
//! library.

use std::process::ExitCode;

use clap::Parser;
use products_manager::cli::{Cli, Command, ConfigCommand};
use products_manager::{block_on, run, shutdown_signal, telemetry, Outcome};

/// mimalloc instead of glibc's malloc: an import allocates millions of small values on the
/// parser's thread that the writer frees on another, and glibc spent a quarter of the service's
/// CPU on it, much of it on arena locks (BENCHMARKS.md, issue 8). Built without transparent
/// huge pages (`no_thp`), which raised the peak RSS of large imports near the 256 MB limit.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let loaded = match pm_config::load(cli.config.as_deref()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("products-manager: {e}");
            return ExitCode::from(78); // EX_CONFIG
        }
    };
    if let Some(Command::Config {
        command: ConfigCommand::Check,
    }) = &cli.command
    {
        for w in &loaded.warnings {
            eprintln!("warning: {w}");
        }
        match toml::to_string_pretty(&loaded.settings) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("products-manager: cannot print settings: {e}");
                return ExitCode::FAILURE;
            }
        }
        return ExitCode::SUCCESS;
    }
    telemetry::init(&loaded.settings.log);
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let settings = loaded.settings;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate => block_on(async {
            match pm_storage::Databases::open(&settings).await {
                Ok(dbs) => {
                    dbs.close().await;
                    tracing::info!("databases migrated");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    tracing::error!(error = %e, "migration failed");
                    ExitCode::FAILURE
                }
            }
        }),
        Command::Serve => block_on(async move {
            let listener = match tokio::net::TcpListener::bind(settings.server.bind).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!(bind = %settings.server.bind, error = %e, "cannot listen");
                    return ExitCode::FAILURE;
                }
            };
            match run(settings, listener, shutdown_signal()).await {
                Ok(Outcome::Stopped) => ExitCode::SUCCESS,
                Ok(Outcome::Escalated(_)) => ExitCode::from(70), // EX_SOFTWARE
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "failed to start");
                    ExitCode::FAILURE
                }
            }
        }),
        Command::Config { .. } => ExitCode::SUCCESS,
        Command::Import {
            supplier,
            file,
            template,
            dry_run,
            full,
            max_errors,
            quiet,
        } => block_on(async move {
            let args = products_manager::import_cli::ImportArgs {
                supplier,
                file,
                template,
                dry_run,
                full,
                max_errors,
                quiet: quiet || !std::io::IsTerminal::is_terminal(&std::io::stderr()),
            };
            match products_manager::import_cli::import(settings, args).await {
                Ok((summary, ok)) => {
                    println!("{summary}");
                    if ok {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }),
        Command::Admin { command } => block_on(async move {
            match products_manager::admin(&settings, command).await {
                Ok(out) => {
                    println!("{out}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }),
    }
}
