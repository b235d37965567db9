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
