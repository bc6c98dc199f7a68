//! Rate limits of a node among several: counted in Redis ([`RedisRateStore`]), so N nodes
//! hold each limit as one would. While Redis cannot be reached they fail closed, like budgets;
//! under `redis_outage_mode = local_share` each node instead counts in its own memory against
//! its share of each limit (1/N, N the nodes seen in the last minute, rounded down). Its
//! memory starts from what Redis last said of each subject (every answer from Redis is kept
//! there), so what all nodes used before the outage counts against each share, and the nodes
//! together admit no more than the limit. Requests in flight count from the outage on.

use std::sync::Arc;

use futures::future::BoxFuture;
use smallvec::SmallVec;

use super::Cluster;
use crate::billing::rates::redis::RedisRateStore;
use crate::billing::rates::{Admitted, MemoryRateStore, RateError, RateStore, RateSubject};
use crate::domain::rate_limits::RateLimits;

#[derive(Debug)]
pub struct NodeRates {
    cluster: Arc<Cluster>,
    redis: RedisRateStore,
}

impl NodeRates {
    pub fn new(cluster: Arc<Cluster>) -> NodeRates {
        NodeRates {
            redis: RedisRateStore::new(cluster.connection(), cluster.key("")),
            cluster,
        }
    }

    /// Admits on this node's share of each limit, in its memory.
    fn admit_on_share(&self, subjects: &[RateSubject], tokens: u64) -> Result<Admitted, RateError> {
        let nodes = self.cluster.nodes_seen();
        let shares: SmallVec<[RateSubject; 2]> = subjects
            .iter()
            .map(|subject| RateSubject {
                limits: share(subject.limits, nodes),
                ..subject.clone()
            })
            .collect();
        let mut admitted = MemoryRateStore
            .admit_at(crate::clock::now_ms(), &shares, tokens)
            .map_err(RateError::Refused)?;
        admitted.in_memory = true;
        Ok(admitted)
    }
}

/// One node's share of `limits` among `nodes`.
fn share(limits: RateLimits, nodes: u64) -> RateLimits {
    let part = |limit: Option<u64>| limit.map(|limit| limit / nodes.max(1));
    RateLimits {
        rpm: part(limits.rpm),
        tpm: part(limits.tpm),
        max_concurrent: part(limits.max_concurrent),
    }
}

#[async_trait::async_trait]
impl RateStore for NodeRates {
    async fn admit(
        &self,
        request_id: &str,
        subjects: &[RateSubject],
        tokens: u64,
    ) -> Result<Admitted, RateError> {
        let sharing = self.cluster.shares_in_outage();
        // Known to be away: no call that would only time out.
        if sharing && !self.cluster.is_up() {
            return self.admit_on_share(subjects, tokens);
        }
        match self.redis.admit(request_id, subjects, tokens).await {
            Err(RateError::Unavailable(_)) if sharing => self.admit_on_share(subjects, tokens),
            other => other,
        }
    }

    fn settle(&self, request_id: &str, admitted: &Admitted, tokens: u64) -> BoxFuture<'static, ()> {
        if admitted.in_memory {
            MemoryRateStore.settle(request_id, admitted, tokens)
        } else {
            self.redis.settle(request_id, admitted, tokens)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::billing::rates::{RateId, RateScope};
    use crate::config::RedisConfig;

    /// A node whose Redis never answers (nothing listens on the port).
    async fn cut_off_node() -> Arc<Cluster> {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        Cluster::connect(&RedisConfig {
            url: Some(format!("redis://127.0.0.1:{port}/")),
            key_prefix: "tollgate-test:".into(),
        })
        .await
        .unwrap()
        .unwrap()
    }

    fn key(limits: RateLimits) -> [RateSubject; 1] {
        [RateSubject {
            id: RateId::new(RateScope::Key, 1),
            limits,
            counters: Arc::default(),
        }]
    }

    #[tokio::test]
    async fn without_redis_limits_fail_closed_unless_nodes_share() {
        let cluster = cut_off_node().await;
        let rates = NodeRates::new(cluster.clone());
        let key = key(RateLimits {
            rpm: Some(7),
            max_concurrent: Some(3),
            ..RateLimits::NONE
        });
        cluster.set_outage_mode(false);
        assert!(matches!(
            rates.admit("r0", &key, 0).await,
            Err(RateError::Unavailable(_))
        ));
        // Three nodes share: this one admits 7 / 3 = 2 a minute, 3 / 3 = 1 at a time.
        cluster.set_outage_mode(true);
        cluster.nodes_seen.store(3, Ordering::SeqCst);
        let first = rates.admit("r1", &key, 0).await.unwrap();
        assert!(first.in_memory);
        assert!(matches!(
            rates.admit("r2", &key, 0).await,
            Err(RateError::Refused(refusal)) if refusal.limit == 1
        ));
        rates.settle("r1", &first, 0).await;
        let second = rates.admit("r2", &key, 0).await.unwrap();
        rates.settle("r2", &second, 0).await;
        assert!(matches!(
            rates.admit("r3", &key, 0).await,
            Err(RateError::Refused(refusal)) if refusal.limit == 2
        ));
    }
}
