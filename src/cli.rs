//! What the `wicket` binary does for each command: serve, `user …`, `migrate`.

use std::io::{self, BufRead, IsTerminal};

use crate::app::{self, Application};
use crate::config::{Command, Config, UserCommand};
use crate::domain::{Password, Username};
use crate::store::{StoreKind, User};

/// Runs `command` (serving the site when there is none) until it is done.
pub async fn run(config: &Config, command: Option<Command>) -> io::Result<()> {
    match command {
        None => serve(config).await,
        Some(Command::User {
            action: UserCommand::Add { name },
        }) => add_user(config, &name).await,
        Some(Command::Migrate { from, to }) => migrate(config, &from, &to).await,
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
    let report = crate::migrate::migrate(config, from, to).await?;
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
    let password = read_new_password(&name)?;
    let password = Password::parse(password).map_err(|err| invalid(format!("password: {err}")))?;
    let state = app::open_state(config)?;
    let hash = state
        .hasher
        .hash(password)
        .await
        .map_err(io::Error::other)?;
    match state.users.create(&User::new(&name, hash)).await? {
        Ok(()) => {
            println!("created user {name}");
            Ok(())
        }
        Err(_) => Err(invalid(format!("a user called {name} already exists"))),
    }
}

/// Asks twice on a terminal (without echo); otherwise reads one line from stdin.
fn read_new_password(name: &Username) -> io::Result<String> {
    if io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("Password for {name}: "))?;
        let again = rpassword::prompt_password("Password again: ")?;
        if first != again {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the passwords do not match",
            ));
        }
        return Ok(first);
    }
    let mut line = String::new();
    io::stdin().lock().read_line(&mut line)?;
    let line = line.strip_suffix('\n').unwrap_or(&line);
    Ok(line.strip_suffix('\r').unwrap_or(line).to_owned())
}
