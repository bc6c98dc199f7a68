//! One client connection's life: served over HTTP/1 or HTTP/2 (sniffed from its first bytes),
//! closed when it says nothing, and shut down gracefully when the server stops.
//!
//! hyper bounds how long an HTTP/1 request's headers may take, but not the protocol sniff
//! before it (a connection that sends nothing, or one byte, would stay open for ever) and not
//! an HTTP/2 connection with no stream open. So each connection gets the header-read time from
//! accept to its first request's headers, and an HTTP/2 connection is closed once it has had
//! no request open for that long.
//!
//! Here, once for every route, each request gets its client's address (see
//! `protocol::client::ClientAddress`) and a deadline on its body (see `body_deadline`); a body
//! that misses it closes the connection once its answer is out, and a body read chosen to go
//! when descriptors run short (see `descriptors`) closes it at once.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::body_deadline::{BodyRule, TimedBody};
use super::descriptors::{Activity, Descriptors, OpenConnection, OpenRequest};
use crate::config::BodyDeadlines;
use crate::domain::client_address::TrustedProxies;
use crate::protocol::client::ClientAddress;

/// What every connection of a serving thread is served with.
#[derive(Clone)]
pub(super) struct Serving {
    pub builder: Builder<TokioExecutor>,
    pub router: Router,
    /// The header-read time, and the most an HTTP/2 connection stays with no request open.
    pub idle_limit: Duration,
    pub body_deadlines: BodyDeadlines,
    pub proxies: Arc<TrustedProxies>,
    pub descriptors: Arc<Descriptors>,
}

/// How long a connection that sent no request has to close after being told to.
const CLOSING_GRACE: Duration = Duration::from_secs(1);

/// A response body that keeps its request counted as open until it is sent or dropped.
struct TrackedBody {
    body: Body,
    _open: OpenRequest,
}

impl http_body::Body for TrackedBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Serves one accepted connection until it ends, it is idle too long, a body misses its
/// deadline, descriptors run short, or `stop` fires (then gracefully: requests in flight
/// finish).
pub(super) async fn serve(
    tcp: TcpStream,
    peer: SocketAddr,
    _open: OpenConnection,
    serving: Serving,
    stop: CancellationToken,
) {
    let Serving {
        builder,
        router,
        idle_limit,
        body_deadlines,
        proxies,
        descriptors,
    } = serving;
    let activity = Arc::new(Activity::new(descriptors));
    let tracked = activity.clone();
    let service = tower::service_fn(move |request: hyper::Request<Incoming>| {
        let rule = BodyRule::for_path(request.uri().path(), body_deadlines);
        let connection = tracked.clone();
        let mut request = request.map(|body| Body::new(TimedBody::new(body, rule, connection)));
        let address = ClientAddress::of_request(peer, request.headers(), &proxies);
        request.extensions_mut().insert(address);
        let open = tracked.request_started(request.version());
        let router = router.clone();
        async move {
            let response = router.oneshot(request).await;
            Ok::<_, Infallible>(match (response, open) {
                (Ok(response), Some(open)) => {
                    response.map(|body| Body::new(TrackedBody { body, _open: open }))
                }
                (Ok(response), None) => response,
                (Err(never), _) => match never {},
            })
        }
    });
    let connection = builder
        .serve_connection_with_upgrades(TokioIo::new(tcp), TowerToHyperService::new(service));
    let mut connection = std::pin::pin!(connection);
    let mut stopping = false;
    let mut watching = true;
    let mut closing = false;
    let check = tokio::time::sleep(idle_limit);
    let mut check = std::pin::pin!(check);
    loop {
        tokio::select! {
            ended = connection.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = stop.cancelled(), if !stopping => {
                connection.as_mut().graceful_shutdown();
                stopping = true;
            }
            _ = activity.closing.notified() => {
                if activity.closing_now() {
                    tracing::debug!(%peer, "closing a connection to make room for others");
                    return;
                }
                if !closing {
                    // Let the answer to the late body go out, then close; cut it if that
                    // takes longer than a moment.
                    connection.as_mut().graceful_shutdown();
                    stopping = true;
                    closing = true;
                    watching = true;
                    check.as_mut().reset(tokio::time::Instant::now() + CLOSING_GRACE);
                }
            }
            _ = check.as_mut(), if watching => {
                if closing {
                    // The polite close did not finish: cut it.
                    return;
                }
                if !activity.requested.load(Ordering::Relaxed) {
                    // No request's headers since accept: close it (an HTTP/2 client is told
                    // with a GOAWAY), and cut it if it is still open a moment later.
                    tracing::debug!(%peer, "closing a connection that sent no request");
                    connection.as_mut().graceful_shutdown();
                    stopping = true;
                    closing = true;
                    check.as_mut().reset(tokio::time::Instant::now() + CLOSING_GRACE);
                    continue;
                }
                if !activity.http2.load(Ordering::Relaxed) {
                    // HTTP/1: hyper's header-read timer bounds the idle time between requests.
                    watching = false;
                    continue;
                }
                match activity.idle_for() {
                    Some(idle) if idle >= idle_limit => {
                        tracing::debug!(%peer, "closing an idle HTTP/2 connection");
                        connection.as_mut().graceful_shutdown();
                        stopping = true;
                        watching = false;
                    }
                    Some(idle) => check.as_mut().reset(tokio::time::Instant::now() + idle_limit - idle),
                    None => check.as_mut().reset(tokio::time::Instant::now() + idle_limit),
                }
            }
        }
    }
}
