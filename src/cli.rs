//! The command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "products-manager",
    version,
    about = "Turns suppliers' product files into one clean catalog."
)]
pub struct Cli {
    /// Settings file layered over the built-in defaults (see config/default.toml).
    #[arg(long, global = true, env = "PM_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service (the default).
    Serve,
    /// Create the databases if missing, apply migrations, and exit.
    Migrate,
    /// Settings commands.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Imports a supplier's file with a progress bar: the same pipeline as the API (the
    /// imports queue, the supplier's session, the catalog), on the configured databases. Exits
    /// 0 when the import succeeded (rows may have been rejected: the summary says where they
    /// are), 1 otherwise.
    Import {
        /// The supplier's code.
        #[arg(long)]
        supplier: String,
        /// A CSV/TSV/TXT (any encoding) or XLSX, XLS, XLSB, ODS file.
        file: PathBuf,
        /// One of the supplier's mapping templates, by id or name.
        #[arg(long)]
        template: Option<String>,
        /// Parse and validate only; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// A full import: the supplier's offers missing from the file get stock 0.
        #[arg(long)]
        full: bool,
        /// Stop once more than this many rows were rejected.
        #[arg(long)]
        max_errors: Option<u64>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Recovery from the shell, on the databases directly (the service may be running).
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Sets a new password for USER, reactivates the account and ends its sessions. The
    /// password is read from stdin with --password-stdin, or generated and printed once.
    ResetPassword {
        username: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Creates USER with the admin role (password as for reset-password).
    CreateAdmin {
        username: String,
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective settings (secrets masked) and any warnings, then exit.
    Check,
}
