//! The `wicket` binary: parses the command line, sets up logging, dispatches.

use std::io::{self, IsTerminal};
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;
use wicket::config::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_ansi(io::stdout().is_terminal())
        .init();
    match wicket::cli::run(&cli.config, cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("wicket: {}", wicket::error::chain(&err));
            ExitCode::FAILURE
        }
    }
}
