//! The relay's HTTP client for upstreams: hyper's pooled client with rustls (the platform's
//! certificate store), TCP_NODELAY, and keep-alive connections shared by every request. The
//! relay uses it directly rather than through reqwest, whose per-request layers (redirects,
//! proxies, timeouts it does not need) cost about a tenth of the gateway's CPU.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyDataStream, BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

pub type UpstreamResponse = http::Response<Incoming>;
pub type UpstreamError = hyper_util::client::legacy::Error;

type HyperClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// One connection pool per serving thread: a pooled connection is driven by a task on the
/// thread that opened it, so a pool shared between threads would hand every request to
/// another thread and back, a wake-up across cores each way.
#[derive(Clone)]
pub struct UpstreamClient {
    /// Tells apart the clients of several servers in one process (the tests start many).
    id: u64,
    connect_timeout: Duration,
    max_idle_per_host: usize,
    /// Serves threads whose own client could not be built (it was built once already, so
    /// in practice never).
    shared: HyperClient,
}

thread_local! {
    static THREAD_CLIENTS: std::cell::RefCell<Vec<(u64, HyperClient)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

impl UpstreamClient {
    pub fn new(connect_timeout: Duration, max_idle_per_host: usize) -> anyhow::Result<Self> {
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        Ok(UpstreamClient {
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            connect_timeout,
            max_idle_per_host,
            shared: build_client(connect_timeout, max_idle_per_host)?,
        })
    }

    pub async fn send(
        &self,
        request: http::Request<Full<Bytes>>,
    ) -> Result<UpstreamResponse, UpstreamError> {
        self.thread_client().request(request).await
    }

    fn thread_client(&self) -> HyperClient {
        THREAD_CLIENTS.with(|clients| {
            let mut clients = clients.borrow_mut();
            if let Some((_, client)) = clients.iter().find(|(id, _)| *id == self.id) {
                return client.clone();
            }
            let client = build_client(self.connect_timeout, self.max_idle_per_host)
                .unwrap_or_else(|_| self.shared.clone());
            clients.push((self.id, client.clone()));
            client
        })
    }
}

fn build_client(
    connect_timeout: Duration,
    max_idle_per_host: usize,
) -> anyhow::Result<HyperClient> {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    http.enforce_http(false);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .try_with_platform_verifier()?
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(max_idle_per_host)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(https))
}

/// The body's data frames as a stream.
pub fn data_stream(
    response: UpstreamResponse,
) -> futures::stream::BoxStream<'static, Result<Bytes, hyper::Error>> {
    Box::pin(BodyDataStream::new(response.into_body()))
}

/// The next data frame of a body (trailers are skipped), or None at the end.
pub async fn next_data(body: &mut Incoming) -> Option<Result<Bytes, hyper::Error>> {
    loop {
        match body.frame().await? {
            Ok(frame) => match frame.into_data() {
                Ok(data) => return Some(Ok(data)),
                Err(_) => continue,
            },
            Err(e) => return Some(Err(e)),
        }
    }
}

/// An error and its causes on one line (hyper's own message omits what failed underneath).
pub fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}
