//! The change feed, announced: a node (or a CLI command) that committed a write publishes on
//! Redis, and every node catches up at once instead of at its next poll. Polling the data
//! version stays the source of truth; a lost announcement only delays a change to the poll.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::Cluster;
use crate::records::Change;
use crate::service::AfterWrite;

fn channel(cluster: &Cluster) -> String {
    cluster.key("feed")
}

/// Tells every node that the feed moved. A failure is logged: the nodes' polls find the
/// change anyway.
pub async fn announce(cluster: &Cluster) {
    let mut connection = cluster.connection();
    let published: redis::RedisResult<i64> = redis::cmd("PUBLISH")
        .arg(channel(cluster))
        .arg("changed")
        .query_async(&mut connection)
        .await;
    cluster.answered(&published);
    if let Err(e) = published {
        tracing::debug!(error = %e, "could not announce a change; nodes find it at their next poll");
    }
}

/// Announces each write a command-line process commits.
pub struct Announce(pub Arc<Cluster>);

impl AfterWrite for Announce {
    fn committed<'a>(&'a self, _changes: &'a [Change]) -> BoxFuture<'a, ()> {
        Box::pin(announce(&self.0))
    }
}

/// Wakes `wake` at every announcement until `cancel`; subscribes again after a lost
/// connection, and wakes once then, since announcements may have been missed meanwhile.
pub async fn listen(cluster: Arc<Cluster>, wake: impl Fn() + Send, cancel: CancellationToken) {
    let mut retry = Duration::from_millis(100);
    loop {
        let subscribed = async {
            let mut pubsub = cluster.client().get_async_pubsub().await?;
            pubsub.subscribe(channel(&cluster)).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let pubsub = tokio::select! {
            _ = cancel.cancelled() => return,
            subscribed = subscribed => subscribed,
        };
        match pubsub {
            Ok(pubsub) => {
                retry = Duration::from_millis(100);
                wake();
                let mut messages = pubsub.into_on_message();
                loop {
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        message = messages.next() => match message {
                            Some(_) => wake(),
                            None => break,
                        },
                    }
                }
                tracing::debug!("the change announcements' connection closed; subscribing again");
            }
            Err(e) => {
                tracing::debug!(error = %e, "cannot subscribe to change announcements; polling meanwhile");
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(retry) => {}
        }
        retry = (retry * 2).min(Duration::from_secs(5));
    }
}

/// A wake-up for [`listen`] from a `Notify`.
pub fn notifier(notify: Arc<Notify>) -> impl Fn() + Send {
    move || notify.notify_one()
}
