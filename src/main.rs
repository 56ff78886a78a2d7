//! The `wicket` binary: parses the command line, sets up logging, dispatches.

use std::io::{self, IsTerminal};
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;
use wicket::config::{Cli, LogFormat};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    return_memory_promptly();
    run()
}

/// mimalloc keeps freed memory committed for a while by default; Wicket's big
/// allocations are brief (scrypt's 128 MiB, start-up compression), so it hands them
/// back at once and commits arena memory only as it is used: the idle and flood
/// RSS stay what they were with the system allocator.
fn return_memory_promptly() {
    // Option numbers from mimalloc.h (`mi_option_e`, the same in v2 and v3).
    const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: setting an option is a plain store into mimalloc's option table.
    unsafe {
        libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0);
        libmimalloc_sys::mi_option_set(PURGE_DELAY, 0);
    }
}

#[tokio::main]
async fn run() -> ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    // A command's output is stdout (`wicket export` writes accounts there): its log
    // goes to stderr. The server logs to stdout.
    let command = cli.command.is_some();
    let writer = move || -> Box<dyn io::Write> {
        if command {
            Box::new(io::stderr())
        } else {
            Box::new(io::stdout())
        }
    };
    let terminal = if command {
        io::stderr().is_terminal()
    } else {
        io::stdout().is_terminal()
    };
    match cli.config.log_format {
        LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(writer)
            .with_ansi(terminal)
            .init(),
        // One object per line: the event's fields at the top, the request's (id,
        // method, path, client) under "span".
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_env_filter(filter)
            .with_writer(writer)
            .init(),
    }
    match wicket::cli::run(&cli.config, cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("wicket: {}", wicket::error::chain(&err));
            ExitCode::FAILURE
        }
    }
}
