use std::process::ExitCode;

use clap::{Args, FromArgMatches, Parser};
use tollgate::cli::{Cli, Command, run_command};
use tollgate::config::{Config, ServerConfig};
use tollgate::{App, telemetry};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        None => serve(cli.database, default_server_config()).await,
        Some(Command::Serve(server)) => serve(cli.database, server).await,
        Some(command) => {
            telemetry::init("warn");
            run_command(&cli.database, command).await
        }
    }
}

/// `tollgate` with no subcommand is `tollgate serve` with its defaults and environment.
fn default_server_config() -> ServerConfig {
    let command = ServerConfig::augment_args(clap::Command::new("serve"));
    command
        .try_get_matches_from(["serve"])
        .and_then(|matches| ServerConfig::from_arg_matches(&matches))
        .unwrap_or_else(|e| e.exit())
}

async fn serve(database: tollgate::config::DatabaseConfig, server: ServerConfig) -> ExitCode {
    telemetry::init("info,sqlx=warn");
    let config = Config { database, server };
    let app = match App::build(config).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!("{e:#}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!("Tollgate listening on http://{}", app.local_addr());
    match app
        .run_until_stopped(tollgate::app::shutdown_signal())
        .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}
