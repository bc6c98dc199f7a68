//! What `/readyz` asks: whether this node should be sent traffic. It is not while it drains
//! at a graceful stop, before its routing view is loaded, when the database does not answer,
//! or when a check registered by a part that depends on something else (Redis) fails.
//! `/healthz` asks nothing: the process serves.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

/// A readiness condition a part of the server registers (see [`Health::add_check`]).
#[async_trait::async_trait]
pub trait ReadinessCheck: Send + Sync {
    /// What `/readyz` names when the check fails (`redis`).
    fn name(&self) -> &'static str;

    /// Ok when ready; otherwise a short reason for `/readyz`'s body (no secrets: the body is
    /// public).
    async fn check(&self) -> Result<(), String>;
}

#[derive(Default)]
pub struct Health {
    draining: AtomicBool,
    routing_loaded: AtomicBool,
    checks: RwLock<Vec<Arc<dyn ReadinessCheck>>>,
}

impl Health {
    /// The graceful stop began: `/readyz` answers 503 from now on.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// The routing view has been read from the database.
    pub fn routing_loaded(&self) {
        self.routing_loaded.store(true, Ordering::SeqCst);
    }

    pub fn is_routing_loaded(&self) -> bool {
        self.routing_loaded.load(Ordering::SeqCst)
    }

    /// Adds a condition `/readyz` checks at every call, beside the database's.
    pub fn add_check(&self, check: Arc<dyn ReadinessCheck>) {
        self.checks
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(check);
    }

    /// The registered checks (copied out, so none is held locked while checking).
    pub fn checks(&self) -> Vec<Arc<dyn ReadinessCheck>> {
        self.checks
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("draining", &self.is_draining())
            .field("routing_loaded", &self.is_routing_loaded())
            .field(
                "checks",
                &self.checks().iter().map(|c| c.name()).collect::<Vec<_>>(),
            )
            .finish()
    }
}
