use std::process::ExitCode;

use clap::{Args, FromArgMatches, Parser};
use tollgate::cli::{Cli, Command, run_command};
use tollgate::config::{Config, ServerConfig};
use tollgate::{App, telemetry};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        None => serve(cli.database, default_server_config(), cli.redis),
        Some(Command::Serve(server)) => serve(cli.database, server, cli.redis),
        Some(command) => {
            telemetry::init("warn");
            // One-shot commands do a few queries: one thread is plenty.
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime.block_on(run_command(
                    &cli.database,
                    &cli.redis,
                    cli.create_database,
                    command,
                )),
                Err(e) => {
                    eprintln!("error: cannot start the async runtime: {e}");
                    ExitCode::FAILURE
                }
            }
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

fn serve(
    database: tollgate::config::DatabaseConfig,
    server: ServerConfig,
    redis: tollgate::config::RedisConfig,
) -> ExitCode {
    telemetry::init("info,sqlx=warn");
    // This runtime carries the background jobs and the billing writer; requests are served by
    // threads of their own (see tollgate::app), `--workers` of them.
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all().worker_threads(1);
    match runtime.build() {
        Ok(runtime) => runtime.block_on(run_server(Config {
            database,
            server,
            redis,
        })),
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run_server(config: Config) -> ExitCode {
    let app = match App::build(config).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!("{e:#}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!("Tollgate listening on http://{}", app.local_addr());
    if let Some(link) = app.setup_link() {
        tracing::warn!("no administrator exists yet: create the root account at {link}");
        println!("Set up Tollgate: open {link}");
    }
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
