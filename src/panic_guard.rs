//! A bug must not cost a client its answer: a panic in a handler becomes the stack's own
//! internal-error response instead of a dropped connection. (A relay ticket refunds itself
//! while unwinding.)

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use futures::FutureExt;

pub async fn catch_panic(request: Request, next: Next, fallback: fn() -> Response) -> Response {
    match std::panic::AssertUnwindSafe(next.run(request))
        .catch_unwind()
        .await
    {
        Ok(response) => response,
        Err(_) => {
            tracing::error!("a request handler panicked");
            fallback()
        }
    }
}
