//! Services for the public workload traces, so that a trace replays in a unit its pods fit.
//!
//! A trace's demand comes in its own unit: Alibaba's fleet CPU percent (about 38), Google's
//! cell-average normalised CPU (about 0.47), Azure's summed CPU (about 6.2 million), Bitbrains'
//! CPU MHz (about 1,700), NASA's requests per second (about 0.7, bursting to 20). A service
//! whose `capacity_per_pod` is in another unit pins at its maximum or minimum. This table gives
//! each trace a general service whose per-pod capacity is about a fifth of the trace's mean
//! demand, so the mean needs about five busy pods (seven at the 70 % target) and the peaks of
//! each trace stay under `max_replicas`. NASA is the exception: its per-second bursts reach 30
//! times its mean, so its pods are sized for the bursts (0.5 request/s each, up to 60).
//!
//! | trace | detected by | capacity per pod | SLO | idle latency | replicas |
//! | --- | --- | --- | --- | --- | --- |
//! | alibaba | `row-trace`, header `cpu_util_percent` | 8 % of the fleet | 200 ms | 20 ms | 2–20 |
//! | google | `row-trace`, header `avg_cpu` | 0.1 normalised CPU | 200 ms | 20 ms | 2–20 |
//! | azure | `timed-trace` | 1.2 million summed CPU | 200 ms | 20 ms | 2–20 |
//! | bitbrains | `bitbrains` | 400 MHz | 200 ms | 20 ms | 2–20 |
//! | nasa | `nasa-counts` | 0.5 request/s | 500 ms | 50 ms | 1–60 |
//!
//! Every trace service starts 60 s after it is asked for, aims at 70 % CPU and starts with its
//! minimum. These are plausible shapes chosen for a meaningful replay, not measurements of the
//! systems the traces came from.

use std::io::Read;
use std::path::Path;

use crate::ingest::{self, Format};
use crate::topology::{ServiceKind, ServiceSpec};

/// One row of the table: a trace and its service's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TraceProfile {
    /// The trace's short name.
    pub trace: &'static str,
    pub capacity_per_pod: f64,
    pub slo_latency_ms: f64,
    pub base_latency_ms: f64,
    pub min_replicas: i64,
    pub max_replicas: i64,
}

/// The table of the module docs.
pub const PROFILES: [TraceProfile; 5] = [
    profile("alibaba", 8.0, 200.0, 20.0, 2, 20),
    profile("google", 0.1, 200.0, 20.0, 2, 20),
    profile("azure", 1.2e6, 200.0, 20.0, 2, 20),
    profile("bitbrains", 400.0, 200.0, 20.0, 2, 20),
    profile("nasa", 0.5, 500.0, 50.0, 1, 60),
];

const fn profile(
    trace: &'static str,
    capacity_per_pod: f64,
    slo_latency_ms: f64,
    base_latency_ms: f64,
    min_replicas: i64,
    max_replicas: i64,
) -> TraceProfile {
    TraceProfile {
        trace,
        capacity_per_pod,
        slo_latency_ms,
        base_latency_ms,
        min_replicas,
        max_replicas,
    }
}

impl TraceProfile {
    /// Returns a general service named `name` with this profile's settings.
    pub fn service(&self, name: &str) -> ServiceSpec {
        ServiceSpec {
            name: name.to_string(),
            kind: ServiceKind::General,
            min_replicas: self.min_replicas,
            max_replicas: self.max_replicas,
            capacity_per_pod: self.capacity_per_pod,
            startup_s: 60,
            slo_latency_ms: self.slo_latency_ms,
            base_latency_ms: self.base_latency_ms,
            target_utilization_percent: 70.0,
            initial_replicas: self.min_replicas,
        }
    }
}

/// Returns the profile of the trace in `path`, found from its content, or `None` for a file
/// that is not one of the known traces (market data included).
///
/// # Errors
/// Fails when the file cannot be opened or its format is not recognised.
pub fn profile_of(path: &Path) -> Result<Option<TraceProfile>, ingest::Error> {
    let name = match ingest::open(path, None)?.format() {
        Format::RowTrace if header_starts_with(path, "avg_cpu") => "google",
        Format::RowTrace => "alibaba",
        Format::TimedTrace => "azure",
        Format::Bitbrains => "bitbrains",
        Format::NasaCounts => "nasa",
        _ => return Ok(None),
    };
    Ok(PROFILES.iter().find(|p| p.trace == name).copied())
}

/// Returns true when the file's first bytes start with `prefix` (row traces are plain CSV).
fn header_starts_with(path: &Path, prefix: &str) -> bool {
    let mut head = vec![0u8; prefix.len()];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| head == prefix.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile_named(path: &str) -> &'static str {
        let path = crate::data::shared_data_file(path);
        profile_of(&path)
            .expect("open")
            .expect("a known trace")
            .trace
    }

    #[test]
    fn each_public_trace_is_recognised_from_its_content() {
        let alibaba = "workload/alibaba2018_machine_usage_days_1_to_8_grouped_30_seconds.csv";
        assert_eq!(profile_named(alibaba), "alibaba");
        let google = "workload/google2019_instance_usage_grouped_300_seconds_month.csv";
        assert_eq!(profile_named(google), "google");
        let azure = "workload/azure_v2_vm_cpu_readings_month_aggregated_cpu_mem.csv";
        assert_eq!(profile_named(azure), "azure");
        assert_eq!(
            profile_named("workload/bitbrains-vm407-2013-07.csv"),
            "bitbrains"
        );
        let nasa = "workload/nasa-http-1995-requests-per-second.tbz2";
        assert_eq!(profile_named(nasa), "nasa");
    }

    #[test]
    fn market_data_has_no_trace_profile() {
        let path = crate::data::shared_data_file("market/tardis_trades.csv");
        assert_eq!(profile_of(&path).expect("open"), None);
    }

    #[test]
    fn azure_mean_demand_needs_about_five_busy_pods() {
        let azure = PROFILES[2];
        // The Azure trace's mean summed CPU is about 6.18 million.
        let pods = 6.18e6 / azure.service("azure").capacity_per_pod;
        assert!((5.0..5.3).contains(&pods), "{pods}");
    }
}
