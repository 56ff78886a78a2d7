use std::io::{self, BufRead, IsTerminal};
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;
use wicket::app::{self, Application};
use wicket::config::{Cli, Command, Config, UserCommand};
use wicket::domain::{Password, Username};
use wicket::store::StoreKind;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_ansi(io::stdout().is_terminal())
        .init();
    let result = match cli.command {
        None => serve(&cli.config).await,
        Some(Command::User {
            action: UserCommand::Add { name },
        }) => add_user(&cli.config, &name).await,
        Some(Command::Migrate { from, to }) => migrate(&cli.config, &from, &to).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("wicket: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: &Config) -> io::Result<()> {
    let app = Application::build(config).await?;
    app.run_until(shutdown_signal()).await
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
    tracing::info!("shutting down");
}

/// `wicket migrate --from files --to redis://…`
async fn migrate(config: &Config, from: &StoreKind, to: &StoreKind) -> io::Result<()> {
    let report = wicket::migrate::migrate(config, from, to).await?;
    println!(
        "users: {} copied, {} already there; sessions: {} copied, {} already there, {} ended (skipped)",
        report.users_copied,
        report.users_present,
        report.sessions_copied,
        report.sessions_present,
        report.sessions_ended
    );
    if report.users_conflicting.is_empty() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "these users exist in the target with other data and were left alone: {}",
            report.users_conflicting.join(", ")
        )))
    }
}

/// `wicket user add NAME`: the password comes from a no-echo prompt, or stdin's first line.
async fn add_user(config: &Config, name: &str) -> io::Result<()> {
    let invalid = |msg: String| io::Error::new(io::ErrorKind::InvalidInput, msg);
    let name = Username::parse(name).map_err(|err| invalid(format!("username: {err}")))?;
    let password = if io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("Password for {name}: "))?;
        let again = rpassword::prompt_password("Password again: ")?;
        if first != again {
            return Err(invalid("the passwords do not match".into()));
        }
        first
    } else {
        let mut line = String::new();
        io::stdin().lock().read_line(&mut line)?;
        line.strip_suffix('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .unwrap_or(&line)
            .to_owned()
    };
    let password = Password::parse(password).map_err(|err| invalid(format!("password: {err}")))?;
    let state = app::open_state(config)?;
    let hash = state
        .hasher
        .hash(password)
        .await
        .map_err(io::Error::other)?;
    match state.users.create(&name, hash).await? {
        Ok(user) => {
            println!("created user {}", user.name);
            Ok(())
        }
        Err(_) => Err(invalid(format!("a user called {name} already exists"))),
    }
}
