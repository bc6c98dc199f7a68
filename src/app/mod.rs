//! Building and running the server: database, billing writer, snapshot, background jobs, and
//! the serving threads, each with its own accept loop (TCP_NODELAY) and a bounded graceful stop.
//!
//! Requests are served thread per core: every serving thread runs a single-threaded runtime
//! with its own listening socket on the shared port (`SO_REUSEPORT`, so the kernel spreads
//! connections over the threads) and its own upstream connection pool. A request then lives on
//! one thread from the client's bytes to the upstream's answer, with no hand-off between
//! cores; the work-stealing runtime spent about a fifth of the gateway's CPU on such
//! hand-offs (wake-ups, context switches, reschedule interrupts). Background jobs and the
//! billing writer run on the runtime that called [`App::run_until_stopped`].

mod body_deadline;
mod connection;
mod descriptors;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::billing;
use crate::config::Config;
use crate::domain::client_address::TrustedProxies;
use crate::domain::tokenizer;
use crate::jobs;
use crate::service::Ctx;
use crate::snapshot::{Directory, Snapshot};
use crate::state::{AppInner, AppState};

/// Idle keep-alive connections to upstreams kept per host.
const UPSTREAM_POOL_PER_HOST: usize = 512;

/// Every route the server answers: the `/v1` relay, the management API under `/api`, and the
/// portal's pages. A path none of them knows is answered in the caller's terms: OpenAI's
/// envelope under `/v1` (with none of the portal's layers), the not-found page elsewhere.
fn routes(state: AppState) -> Router {
    let not_found_page = crate::web::not_found_router(&state).with_state(state.clone());
    Router::new()
        .merge(crate::relay::router())
        .merge(crate::oneapi::router())
        .merge(crate::api::router(state.clone()))
        .merge(crate::webhooks::router())
        .merge(crate::ops::router())
        .merge(crate::web::router(&state))
        .fallback(
            move |state: axum::extract::State<AppState>,
                  uri: axum::extract::OriginalUri,
                  request: axum::extract::Request| {
                unknown_path(state, uri, request, not_found_page.clone())
            },
        )
        .with_state(state)
}

async fn unknown_path(
    state: axum::extract::State<AppState>,
    uri: axum::extract::OriginalUri,
    request: axum::extract::Request,
    not_found_page: Router,
) -> axum::response::Response {
    let path = uri.path();
    if path.starts_with("/v1/") || path == "/v1" || path.starts_with("/v2/") {
        crate::relay::unknown_route(state, uri).await
    } else {
        use tower::ServiceExt;
        match not_found_page.oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }
}

pub struct App {
    listener: std::net::TcpListener,
    state: AppState,
    router: Router,
    jobs: JoinSet<()>,
    cancel_jobs: CancellationToken,
    billing_writer: JoinHandle<()>,
    setup_link: Option<String>,
    /// `--metrics-listen`'s socket, served from the start of `run_until_stopped`.
    metrics_listener: Option<TcpListener>,
}

impl App {
    /// Connects and migrates the database, loads the snapshot and binds the listener (port 0
    /// picks a free port; see [`App::local_addr`]).
    pub async fn build(config: Config) -> anyhow::Result<App> {
        let ctx = Ctx::connect(&config.database.url, config.database.max_connections)
            .await
            .with_context(|| {
                format!(
                    "cannot open the database at {}",
                    crate::config::redact_url(&config.database.url)
                )
            })?;
        let clashes = crate::service::users::settle_identities(&ctx)
            .await
            .context("cannot check that accounts are told apart")?;
        if !clashes.is_empty() {
            let named: Vec<String> = clashes.iter().map(|group| group.join(" / ")).collect();
            anyhow::bail!(
                "these accounts differ only in case and would be the same person: {}. Give each \
                 a name or address of its own with `tollgate user update NAME --username NEW` or \
                 `--email NEW`, then start again",
                named.join("; ")
            );
        }
        let cluster = crate::cluster::Cluster::connect(&config.redis).await?;
        let scope_store: Arc<dyn billing::scopes::ScopeStore> = match &cluster {
            Some(cluster) => Arc::new(crate::cluster::scopes::RedisScopes::new(cluster.clone())),
            // One server: every budget is counted in this process's memory.
            None => Arc::new(billing::scopes::MemoryStore),
        };
        let limits = match &cluster {
            Some(cluster) => crate::service::limits::Limits::new(Arc::new(
                crate::cluster::limits::RedisLimits::new(cluster.clone()),
            )),
            None => crate::service::limits::Limits::default(),
        };
        let dead_letters = config.dead_letter_path();
        tracing::info!(
            "billing records the database refuses are kept in {}",
            dead_letters.display()
        );
        let metrics = Arc::new(crate::metrics::Metrics::new());
        let (billing, writer) = billing::writer::start(
            Arc::new(crate::service::billing::StoredBilling(ctx.clone())),
            scope_store,
            config.server.billing_flush_interval(),
            billing::dead_letter::DeadLetterFile::new(dead_letters),
            metrics.billing_flush().clone(),
        );
        // Rate limits count in the same Redis as budgets when nodes share one.
        let billing = match &cluster {
            Some(cluster) => billing.with_rate_store(Arc::new(
                crate::cluster::rates::NodeRates::new(cluster.clone()),
            )),
            None => billing,
        };
        let billing_writer = tokio::spawn(writer);
        let http = reqwest::Client::builder()
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(
                config.server.upstream_connect_timeout_secs,
            ))
            .build()
            .context("cannot build the HTTP client")?;
        let upstream = crate::upstream::UpstreamClient::new(
            Duration::from_secs(config.server.upstream_connect_timeout_secs),
            UPSTREAM_POOL_PER_HOST,
        )
        .context("cannot build the upstream client")?;
        let oauth = crate::oauth::OAuthClient::new().context("cannot build the OAuth client")?;
        let (channel_events, channel_event_receiver) = mpsc::unbounded_channel();
        let listener = bind_shared(config.server.listen)
            .with_context(|| format!("cannot listen on {}", config.server.listen))?;
        let metrics_listener = match config.server.metrics_listen {
            Some(address) => Some(
                TcpListener::bind(address)
                    .await
                    .with_context(|| format!("cannot listen on {address} (--metrics-listen)"))?,
            ),
            None => None,
        };
        let metrics_addr = match &metrics_listener {
            Some(listener) => Some(listener.local_addr()?),
            None => None,
        };
        if let Some(address) = metrics_addr {
            tracing::info!(
                "metrics at http://{address}/metrics (no token), with /healthz and /readyz"
            );
        }
        let directory = Directory::new(
            Arc::new(crate::service::relay_accounts::StoredAccounts(ctx.clone())),
            billing.balance_sync().clone(),
            billing.scopes().clone(),
        );
        let listen_url = format!(
            "http://{}",
            listener.local_addr().unwrap_or(config.server.listen)
        );
        let state = AppState(Arc::new_cyclic(|this| AppInner {
            config,
            listen_url,
            ctx: ctx.with_after_write(Arc::new(jobs::snapshot_sync::ApplyChanges(this.clone()))),
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            directory,
            applied_version: tokio::sync::Mutex::new(0),
            billing,
            upstream,
            http,
            oauth,
            tokenizer: tokenizer::shared(),
            request_ids: crate::state::RequestIds::new(),
            channel_events,
            reload: Notify::new(),
            limits,
            cluster: cluster.clone(),
            metrics,
            health: crate::health::Health::default(),
            metrics_addr,
        }));
        jobs::snapshot_sync::reload(&state)
            .await
            .context("cannot load data from the database")?;

        let cancel_jobs = CancellationToken::new();
        let mut background = JoinSet::new();
        background.spawn(jobs::snapshot_sync::run(state.clone(), cancel_jobs.clone()));
        background.spawn(jobs::channel_health::record_events(
            state.clone(),
            channel_event_receiver,
            cancel_jobs.clone(),
        ));
        background.spawn(jobs::channel_health::probe_loop(
            state.clone(),
            cancel_jobs.clone(),
        ));
        if let Some(cluster) = &cluster {
            cluster.report_to(state.metrics.clone());
            state
                .health
                .add_check(Arc::new(crate::cluster::RedisReadiness(cluster.clone())));
            background.spawn(jobs::cluster_lease::run(
                state.clone(),
                cluster.clone(),
                cancel_jobs.clone(),
            ));
            let woken = state.clone();
            background.spawn(crate::cluster::feed::listen(
                cluster.clone(),
                move || woken.reload.notify_one(),
                cancel_jobs.clone(),
            ));
        }
        background.spawn(jobs::low_balance::run(state.clone(), cancel_jobs.clone()));
        background.spawn(jobs::budget_alerts::run(state.clone(), cancel_jobs.clone()));
        background.spawn(jobs::audit_retention::run(
            state.clone(),
            cancel_jobs.clone(),
        ));
        background.spawn(jobs::log_upkeep::run(state.clone(), cancel_jobs.clone()));
        background.spawn(jobs::reconcile_orders::run(
            state.clone(),
            cancel_jobs.clone(),
        ));

        let router = routes(state.clone());
        let setup_link = crate::service::accounts::setup_token(&state.ctx)
            .await
            .context("cannot prepare the first-run link")?
            .map(|token| {
                let listen = format!(
                    "http://{}",
                    listener.local_addr().unwrap_or(state.config.server.listen)
                );
                let base = state.snapshot.load().options.base_url(&listen);
                format!("{base}/setup?token={token}")
            });
        if setup_link.is_some() && state.snapshot.load().options.public_url.is_empty() {
            tracing::warn!(
                "the option public_url is not set: links people are sent use the listen address"
            );
        }
        Ok(App {
            listener,
            state,
            router,
            jobs: background,
            cancel_jobs,
            billing_writer,
            setup_link,
            metrics_listener,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// The first-run link (`…/setup?token=…`) while no administrator exists: new at every
    /// start, working on any server of the database until the root account exists.
    pub fn setup_link(&self) -> Option<&str> {
        self.setup_link.as_deref()
    }

    /// Serves until `shutdown` completes, then stops accepting, lets requests and streams in
    /// flight finish for up to `shutdown_grace_secs`, cuts what is left (those requests are
    /// billed for what they used), and writes every pending billing record before returning.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        let App {
            listener,
            state,
            router,
            mut jobs,
            cancel_jobs,
            billing_writer,
            setup_link: _,
            metrics_listener,
        } = self;
        // The metrics address stays up through the drain below, so `/readyz` there says the
        // node is stopping until its last request has finished and been billed.
        let stop_metrics = CancellationToken::new();
        let _stop_metrics = stop_metrics.clone().drop_guard();
        let metrics_server = metrics_listener.map(|listener| {
            let router = crate::ops::metrics_listener_router().with_state(state.clone());
            let stopped = stop_metrics.clone().cancelled_owned();
            tokio::spawn(async move {
                let served = axum::serve(listener, router)
                    .with_graceful_shutdown(stopped)
                    .await;
                if let Err(e) = served {
                    tracing::error!(error = %e, "the metrics address stopped serving");
                }
            })
        });
        let threads = match state.config.server.workers {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        let address = listener.local_addr()?;
        let mut listeners = vec![listener];
        for _ in 1..threads {
            listeners.push(bind_shared(address).context("cannot open another listening socket")?);
        }
        let descriptors = Arc::new(descriptors::Descriptors::of_this_process());
        match descriptors.limit() {
            Some(limit) => tracing::info!(
                "up to {limit} open files: past 90 % no connection is accepted and the longest-waiting request bodies are closed"
            ),
            None => {
                tracing::info!("the limit on open files is unknown here; no connection is shed")
            }
        }
        let proxies = Arc::new(state.config.server.proxies());
        if !proxies.is_empty() {
            tracing::info!(%proxies, "the client address is read from forwarding headers sent by these proxies");
        }
        let stop = CancellationToken::new();
        // However this function returns, the threads already serving stop with it.
        let _stop_serving = stop.clone().drop_guard();
        let mut serving = Vec::with_capacity(threads);
        for (index, listener) in listeners.into_iter().enumerate() {
            let (done, finished) = tokio::sync::oneshot::channel::<()>();
            let settings =
                connection_settings(&state, router.clone(), proxies.clone(), descriptors.clone());
            let state = state.clone();
            let stop = stop.clone();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start a serving thread's runtime")?;
            let thread = std::thread::Builder::new()
                .name(format!("tollgate-serve-{index}"))
                .spawn(move || {
                    runtime.block_on(async move {
                        match TcpListener::from_std(listener) {
                            Ok(listener) => serve(listener, settings, &state, stop).await,
                            Err(e) => tracing::error!(error = %e, "a serving thread cannot listen"),
                        }
                    });
                    // Ends what the grace period cut short; blocking work (a DNS lookup, a
                    // large prompt being counted) gets a moment, not an unbounded wait.
                    runtime.shutdown_timeout(Duration::from_secs(1));
                    let _ = done.send(());
                })
                .context("cannot start a serving thread")?;
            serving.push((finished, thread));
        }
        // A serving thread that ends before the stop signal has panicked: stop the whole
        // server (and exit with an error) rather than go on with part of it.
        let mut failure = None;
        {
            let any_ended =
                futures::future::select_all(serving.iter_mut().map(|(finished, _)| finished));
            tokio::select! {
                _ = shutdown => {}
                _ = any_ended => {
                    tracing::error!("a serving thread stopped unexpectedly; stopping the server");
                    failure = Some(anyhow::anyhow!("a serving thread stopped unexpectedly"));
                }
            }
        }
        // Load balancers asking `/readyz` now take this node out.
        state.health.start_draining();
        stop.cancel();
        for (finished, thread) in serving {
            let _ = finished.await;
            let joined = tokio::task::spawn_blocking(move || thread.join()).await;
            if !matches!(joined, Ok(Ok(()))) {
                tracing::error!("a serving thread panicked");
                failure.get_or_insert_with(|| anyhow::anyhow!("a serving thread panicked"));
            }
        }
        cancel_jobs.cancel();
        while jobs.join_next().await.is_some() {}
        // Every request has finished or been cut (and billed): write what is pending, and set
        // aside what the database will not take.
        state.billing.close().await;
        billing_writer.abort();
        let _ = billing_writer.await;
        stop_metrics.cancel();
        if let Some(mut server) = metrics_server
            && tokio::time::timeout(Duration::from_secs(1), &mut server)
                .await
                .is_err()
        {
            server.abort();
        }
        state.ctx.close().await;
        tracing::info!("stopped");
        failure.map_or(Ok(()), Err)
    }
}

/// A listening socket on `address` that other sockets of this process may share
/// (`SO_REUSEPORT`, on Linux and the BSDs), non-blocking, ready for any thread's runtime.
fn bind_shared(address: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(address),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    #[cfg(unix)]
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// What a serving thread serves its connections with.
fn connection_settings(
    state: &AppState,
    router: Router,
    proxies: Arc<TrustedProxies>,
    descriptors: Arc<descriptors::Descriptors>,
) -> connection::Serving {
    let header_read_timeout = state.config.server.header_read_timeout();
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Some(header_read_timeout));
    builder.http2().timer(TokioTimer::new());
    connection::Serving {
        builder,
        router,
        idle_limit: header_read_timeout,
        body_deadlines: state.config.server.body_deadlines(),
        proxies,
        descriptors,
    }
}

/// One serving thread's accept loop, until `stop`; then the graceful stop of its connections.
/// Near the limit on open files it accepts nothing until there is room again (see
/// `descriptors`): connections wait in the kernel's queue meanwhile.
async fn serve(
    listener: TcpListener,
    serving: connection::Serving,
    state: &AppState,
    stop: CancellationToken,
) {
    let mut connections: JoinSet<()> = JoinSet::new();
    loop {
        if serving.descriptors.must_pause() {
            tokio::select! {
                _ = tokio::time::sleep(descriptors::SHED_PAUSE) => {}
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                _ = stop.cancelled() => break,
            }
            continue;
        }
        tokio::select! {
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: back off briefly.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let open = serving.descriptors.opened();
                // Small SSE frames must not wait for Nagle's algorithm.
                let _ = tcp.set_nodelay(true);
                connections.spawn(connection::serve(
                    tcp,
                    peer,
                    open,
                    serving.clone(),
                    stop.clone(),
                ));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = stop.cancelled() => break,
        }
    }
    drop(listener);
    let grace = Duration::from_secs(state.config.server.shutdown_grace_secs);
    tracing::info!(
        in_flight = connections.len(),
        "stopping: no new connections; waiting up to {} s for requests in flight",
        grace.as_secs()
    );
    // Every connection saw `stop` and is shutting down gracefully.
    let drained = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, drained).await.is_err() {
        tracing::warn!(
            remaining = connections.len(),
            "grace period over; closing the remaining connections"
        );
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}
