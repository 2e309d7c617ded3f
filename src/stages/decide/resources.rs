//! CPU request and limit recommendations per service, in the manner of the Kubernetes VPA
//! recommender.
//!
//! **Consumes** each window's [`ObservedOutcome`] of a service. **Produces** a
//! [`ResourceRecommendation`]: a target request, its lower and upper bounds and a limit, in
//! milli-CPU. **Keeps**, per service, a decaying histogram of per-pod CPU usage.
//! **Guarantees** the same recommendation for the same windows in the same order.
//!
//! - Usage per pod, in milli-CPU, is `utilisation × 10`: the simulated cluster reports
//!   utilisation as a share of the request, and every pod is taken to request 1000m (as the
//!   reactive rule does). A window with no ready pod adds no sample.
//! - Samples go into a histogram with exponentially growing buckets (the first up to 10m, then
//!   each 5 % wider than the last, as the VPA's CPU histogram), each weighted
//!   `2^(t / half_life)` so that a sample one half-life older counts half (default half-life
//!   24 h, the VPA's).
//! - A percentile is the end of the bucket in which the cumulative weight reaches it (as the
//!   VPA reads its histogram), so it errs upwards by at most one bucket (5 %).
//! - `target = p90 × (1 + margin)`, `lower = p50 × (1 + margin)`, `upper = p95 × (1 + margin)`
//!   with the VPA's safety margin of 15 %, applied to all three as the VPA does, rounded up to
//!   a whole milli-CPU; `limit = target × limit_ratio` (default 1.5, a request-to-limit ratio
//!   a Deployment might declare; the VPA keeps the ratio the pod spec has).
//!
//! # Caveats
//!
//! Utilisation is capped at 100 % by the simulated cluster, so the recommendation never
//! exceeds `1000m × (1 + margin)`: a saturated service's true need is unseen. The VPA's
//! confidence multipliers (wider bounds for short histories) and memory are not modelled.
//! Before any sample every figure is 0, meaning "no recommendation yet".

use serde::{Deserialize, Serialize};

use crate::events::ObservedOutcome;

/// The first bucket's upper edge, in milli-CPU.
const FIRST_BUCKET_MILLI: f64 = 10.0;
/// Each bucket is this much wider than the one before.
const BUCKET_GROWTH: f64 = 1.05;
/// Buckets up to 10m × 1.05^99 ≈ 1,252m; anything above lands in the last one.
const BUCKETS: usize = 100;
/// Weights are rescaled when the newest would exceed 2^this.
const RESCALE_EXPONENT: f64 = 64.0;

/// Settings of the resource recommender.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceConfig {
    /// Added to every percentile (the VPA's 0.15).
    pub safety_margin: f64,
    /// The limit as a multiple of the target request.
    pub limit_ratio: f64,
    /// Seconds after which a sample counts half.
    pub half_life_s: f64,
}

impl Default for ResourceConfig {
    fn default() -> Self {
        Self {
            safety_margin: 0.15,
            limit_ratio: 1.5,
            half_life_s: 86_400.0,
        }
    }
}

/// Requests and limits for one service's pods, in milli-CPU; all 0 before any sample.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceRecommendation {
    pub target_milli: i64,
    pub lower_milli: i64,
    pub upper_milli: i64,
    pub limit_milli: i64,
}

/// A decaying histogram of per-pod CPU usage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuHistogram {
    weights: Vec<f64>,
    total: f64,
    /// The time whose samples weigh 1.
    reference_us: Option<i64>,
}

impl CpuHistogram {
    /// Adds a sample of `usage_milli` at `ts_us`.
    pub fn add(&mut self, usage_milli: f64, ts_us: i64, half_life_s: f64) {
        if self.weights.len() != BUCKETS {
            self.weights = vec![0.0; BUCKETS];
        }
        let reference = *self.reference_us.get_or_insert(ts_us);
        let half_life_us = half_life_s.max(1.0) * 1e6;
        let mut exponent = (ts_us - reference) as f64 / half_life_us;
        if exponent > RESCALE_EXPONENT {
            let scale = (-exponent).exp2();
            self.weights.iter_mut().for_each(|w| *w *= scale);
            self.total *= scale;
            self.reference_us = Some(ts_us);
            exponent = 0.0;
        }
        let weight = exponent.exp2();
        self.weights[bucket(usage_milli)] += weight;
        self.total += weight;
    }

    /// Returns the end of the bucket where the cumulative weight reaches `p` of the total, or
    /// `None` without samples.
    pub fn percentile(&self, p: f64) -> Option<f64> {
        if self.total <= 0.0 {
            return None;
        }
        let threshold = p.clamp(0.0, 1.0) * self.total;
        let mut sum = 0.0;
        for (index, weight) in self.weights.iter().enumerate() {
            sum += weight;
            if *weight > 0.0 && sum >= threshold * (1.0 - 1e-12) {
                return Some(bucket_end(index));
            }
        }
        Some(bucket_end(BUCKETS - 1))
    }
}

/// Returns the bucket of `milli`: 0 below 10m, else `1 + floor(log_1.05(milli / 10))`.
fn bucket(milli: f64) -> usize {
    if milli.is_nan() || milli < FIRST_BUCKET_MILLI {
        return 0;
    }
    let index = 1.0 + (milli / FIRST_BUCKET_MILLI).ln() / BUCKET_GROWTH.ln();
    (index.floor() as usize).min(BUCKETS - 1)
}

/// Returns the upper edge of bucket `index`: `10m × 1.05^index`.
fn bucket_end(index: usize) -> f64 {
    FIRST_BUCKET_MILLI * BUCKET_GROWTH.powi(index as i32)
}

/// Adds `observed`'s per-pod usage to `histogram` (nothing when no pod was ready), and returns
/// the recommendation.
pub fn observe(
    histogram: &mut CpuHistogram,
    observed: &ObservedOutcome,
    config: &ResourceConfig,
) -> ResourceRecommendation {
    if observed.ready_replicas > 0 {
        let usage_milli = observed.utilization.clamp(0.0, 100.0) * 10.0;
        histogram.add(usage_milli, observed.window_end_us, config.half_life_s);
    }
    recommend(histogram, config)
}

/// Returns the recommendation from `histogram`.
pub fn recommend(histogram: &CpuHistogram, config: &ResourceConfig) -> ResourceRecommendation {
    let margin = 1.0 + config.safety_margin.max(0.0);
    let at = |p| {
        histogram
            .percentile(p)
            .map_or(0, |x| (x * margin - 1e-9).ceil() as i64)
    };
    let target_milli = at(0.9);
    ResourceRecommendation {
        target_milli,
        lower_milli: at(0.5),
        upper_milli: at(0.95),
        limit_milli: (target_milli as f64 * config.limit_ratio.max(1.0) - 1e-9).ceil() as i64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR_US: i64 = 3_600_000_000;

    #[test]
    fn buckets_grow_by_five_percent_from_ten_milli() {
        assert_eq!(bucket(5.0), 0);
        assert_eq!(bucket(10.0), 1);
        // 10 × 1.05 = 10.5 starts bucket 2.
        assert_eq!(bucket(10.49), 1);
        assert_eq!(bucket(10.51), 2);
        // 10 × 1.05^47 = 98.5 and 10 × 1.05^48 = 104.0: 100m is in bucket 48.
        assert_eq!(bucket(100.0), 48);
        assert!((bucket_end(48) - 104.01).abs() < 0.01);
        assert_eq!(bucket(1e6), BUCKETS - 1);
    }

    #[test]
    fn target_is_p90_with_the_margin_lower_p50_upper_p95_and_the_limit_a_ratio() {
        let mut h = CpuHistogram::default();
        // 10 samples: eight at 100m, one at 500m, one at 800m.
        for usage in [100.0; 8].into_iter().chain([500.0, 800.0]) {
            h.add(usage, 0, 86_400.0);
        }
        // p50: 5 of 10 is reached in 100m's bucket (48), ending at 104.01; × 1.15 = 119.6 → 120.
        // p90: 9 of 10 is the 500m sample: bucket 1 + floor(ln 50 / ln 1.05) = 1 + 80 = 81,
        //      ending at 10 × 1.05^81 = 520.40; × 1.15 = 598.45 → 599.
        // p95: 9.5 of 10 is the 800m sample: bucket 1 + floor(ln 80 / ln 1.05) = 90, ending at
        //      10 × 1.05^90 = 807.30; × 1.15 = 928.40 → 929.
        let r = recommend(&h, &ResourceConfig::default());
        assert_eq!(
            (r.lower_milli, r.target_milli, r.upper_milli),
            (120, 599, 929)
        );
        // limit = 599 × 1.5 = 898.5 → 899.
        assert_eq!(r.limit_milli, 899);
    }

    #[test]
    fn older_samples_count_less_after_each_half_life() {
        let mut h = CpuHistogram::default();
        h.add(100.0, 0, 3600.0);
        h.add(100.0, 1, 3600.0);
        // Two half-lives later, one 500m sample weighs 4 against the two old ones' 2:
        // the median is now in 500m's bucket (520.4), though it is one sample in three.
        h.add(500.0, 2 * HOUR_US, 3600.0);
        assert!((h.percentile(0.5).unwrap_or(0.0) - 520.4).abs() < 0.1);
        // Without decay (a half-life far longer), the median stays at 100m's bucket (104.01).
        let mut flat = CpuHistogram::default();
        flat.add(100.0, 0, 1e12);
        flat.add(100.0, 1, 1e12);
        flat.add(500.0, 2 * HOUR_US, 1e12);
        assert!((flat.percentile(0.5).unwrap_or(0.0) - 104.01).abs() < 0.01);
    }

    #[test]
    fn weights_are_rescaled_before_they_overflow_without_changing_percentiles() {
        let mut h = CpuHistogram::default();
        h.add(100.0, 0, 1.0);
        // 100 half-lives later: rescaled, the old sample now weighs 2^-100.
        h.add(500.0, 100_000_000, 1.0);
        assert!(h.total.is_finite() && h.total < 2.0);
        assert!((h.percentile(0.01).unwrap_or(0.0) - 520.4).abs() < 0.1);
    }

    #[test]
    fn usage_comes_from_utilisation_times_ten_and_idle_windows_add_nothing() {
        let observed = |util: f64, ready: i64| ObservedOutcome {
            id: "observed/svc/0".into(),
            service: "svc".into(),
            window_start_us: 0,
            window_end_us: 15_000_000,
            load: 0.0,
            replicas: ready.max(1),
            ready_replicas: ready,
            capacity: 0.0,
            utilization: util,
            backlog: 0.0,
            latency_ms: 0.0,
            slo_latency_ms: 0.0,
            slo_violated: false,
        };
        let mut h = CpuHistogram::default();
        let none = observe(&mut h, &observed(90.0, 0), &ResourceConfig::default());
        assert_eq!(none, ResourceRecommendation::default());
        // 10 % of 1000m = 100m → bucket end 104.01 → × 1.15 → 120 for every percentile.
        let r = observe(&mut h, &observed(10.0, 3), &ResourceConfig::default());
        assert_eq!(
            (r.lower_milli, r.target_milli, r.upper_milli),
            (120, 120, 120)
        );
        assert_eq!(r.limit_milli, 180);
    }
}
