//! Channel choice for one (group, model): priority tiers, and within a tier a smooth weighted
//! round-robin, so a channel with weight 3 gets exactly three of every four requests next to a
//! channel with weight 1, with no bursts (nginx's smooth WRR order, precomputed per tier and
//! walked with one atomic counter).
//!
//! A request carries the channels it has already tried; they are skipped, as are channels that
//! are cooling down or disabled, so a retry never hits the same failed channel twice. Tiers are
//! tried from the highest priority down.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::ChannelEntry;

/// Longest precomputed round-robin order. Weights whose reduced sum is larger are scaled down
/// to fit, which keeps proportions to within 1/4096.
const MAX_SEQUENCE: u64 = 4096;

#[derive(Debug)]
pub struct Tier {
    pub priority: i64,
    channels: Vec<Arc<ChannelEntry>>,
    /// Indexes into `channels` in smooth-WRR order; channels with weight 0 are not in it.
    sequence: Vec<u32>,
    /// Weight-0 channels: used only when every weighted channel of the tier is unusable.
    standby: Vec<u32>,
    cursor: AtomicUsize,
}

#[derive(Debug)]
pub struct RouteSet {
    /// Highest priority first.
    pub tiers: Vec<Tier>,
}

/// Why no channel could be picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoChannel {
    /// Every candidate is cooling down; the earliest is usable again at this time (ms).
    CoolingDown { until_ms: i64 },
    /// Every candidate has been tried or is disabled.
    Exhausted,
}

impl RouteSet {
    pub fn new(mut channels: Vec<Arc<ChannelEntry>>) -> RouteSet {
        channels.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.id.cmp(&b.id)));
        let mut tiers: Vec<Tier> = Vec::new();
        for channel in channels {
            match tiers.last_mut() {
                Some(tier) if tier.priority == channel.priority => tier.channels.push(channel),
                _ => tiers.push(Tier {
                    priority: channel.priority,
                    channels: vec![channel],
                    sequence: Vec::new(),
                    standby: Vec::new(),
                    cursor: AtomicUsize::new(0),
                }),
            }
        }
        for tier in &mut tiers {
            let weights: Vec<u64> = tier
                .channels
                .iter()
                .map(|c| u64::try_from(c.weight).unwrap_or(0))
                .collect();
            tier.sequence = smooth_wrr_order(&weights);
            tier.standby = (0..weights.len() as u32)
                .filter(|&i| weights[i as usize] == 0)
                .collect();
        }
        RouteSet { tiers }
    }

    /// Every channel in the set, highest tier first.
    pub fn channels(&self) -> impl Iterator<Item = &Arc<ChannelEntry>> {
        self.tiers.iter().flat_map(|t| t.channels.iter())
    }

    /// The next channel to try, skipping `tried` ones and channels that are cooling down or
    /// disabled.
    pub fn pick(&self, tried: &[i64], now_ms: i64) -> Result<Arc<ChannelEntry>, NoChannel> {
        let mut earliest_cooldown: Option<i64> = None;
        for tier in &self.tiers {
            let mut usable = |index: u32| {
                let channel = &tier.channels[index as usize];
                if tried.contains(&channel.id) || channel.health.is_disabled_here() {
                    return false;
                }
                if channel.health.is_cooling(now_ms) {
                    let until = channel.health.cooldown_until_ms();
                    earliest_cooldown = Some(earliest_cooldown.map_or(until, |e| e.min(until)));
                    return false;
                }
                true
            };
            if !tier.sequence.is_empty() {
                let start = tier.cursor.fetch_add(1, Ordering::Relaxed);
                let len = tier.sequence.len();
                for step in 0..len {
                    let index = tier.sequence[(start + step) % len];
                    if usable(index) {
                        return Ok(tier.channels[index as usize].clone());
                    }
                }
            }
            for &index in &tier.standby {
                if usable(index) {
                    return Ok(tier.channels[index as usize].clone());
                }
            }
        }
        Err(match earliest_cooldown {
            Some(until_ms) => NoChannel::CoolingDown { until_ms },
            None => NoChannel::Exhausted,
        })
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// nginx's smooth weighted round-robin, unrolled into one full period: each step adds every
/// weight to its channel's running score, picks the highest score and subtracts the total
/// from it. Weight-0 entries never appear. When every weight is 0 they all count as 1.
fn smooth_wrr_order(weights: &[u64]) -> Vec<u32> {
    let mut weights: Vec<u64> = if weights.iter().all(|&w| w == 0) {
        vec![1; weights.len()]
    } else {
        weights.to_vec()
    };
    let divisor = weights
        .iter()
        .copied()
        .filter(|&w| w > 0)
        .fold(0, gcd)
        .max(1);
    for w in &mut weights {
        *w /= divisor;
    }
    let total: u64 = weights.iter().sum();
    if total > MAX_SEQUENCE {
        for w in &mut weights {
            if *w > 0 {
                *w = (*w * MAX_SEQUENCE / total).max(1);
            }
        }
    }
    let total: i64 = weights.iter().map(|&w| w as i64).sum();
    let mut scores = vec![0_i64; weights.len()];
    let mut order = Vec::with_capacity(total as usize);
    for _ in 0..total {
        let mut best = 0;
        for (i, &w) in weights.iter().enumerate() {
            scores[i] += w as i64;
            if weights[best] == 0 || (w > 0 && scores[i] > scores[best]) {
                best = i;
            }
        }
        scores[best] -= total;
        order.push(best as u32);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smooth_order_interleaves_by_weight() {
        assert_eq!(smooth_wrr_order(&[1, 3]), vec![1, 0, 1, 1]);
        assert_eq!(smooth_wrr_order(&[5, 1, 1]), vec![0, 0, 1, 0, 2, 0, 0]);
        assert_eq!(smooth_wrr_order(&[2, 2]), vec![0, 1]);
        assert_eq!(smooth_wrr_order(&[0, 0]), vec![0, 1]);
        assert_eq!(smooth_wrr_order(&[0, 4]), vec![1]);
    }

    #[test]
    fn long_orders_are_scaled_but_keep_proportions() {
        let order = smooth_wrr_order(&[1_000_000, 3_000_001]);
        assert!(order.len() as u64 <= MAX_SEQUENCE);
        let first = order.iter().filter(|&&i| i == 0).count() as f64;
        let share = first / order.len() as f64;
        assert!((share - 0.25).abs() < 0.001, "share {share}");
    }
}
