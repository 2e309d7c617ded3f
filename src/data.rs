//! Where the shared recordings live: `TICKSCALE_DATA`, or `../shared/data` beside the checkout.
//!
//! Tests and benchmarks read the public market recordings and workload traces from there; the
//! files are never part of this repository.

use std::path::PathBuf;

/// The environment variable that overrides the data folder.
pub const DATA_ENV: &str = "TICKSCALE_DATA";

/// Returns the shared data folder: `$TICKSCALE_DATA`, or `../shared/data` beside the crate.
pub fn shared_data_dir() -> PathBuf {
    match std::env::var_os(DATA_ENV) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"),
    }
}

/// Returns the path of one recording under the data folder, such as `market/tardis_trades.csv`.
///
/// # Panics
/// Panics with the path it looked at and how to fix it when the file is missing: meant for tests
/// and benchmarks, which cannot run without the data.
pub fn shared_data_file(relative: &str) -> PathBuf {
    let path = shared_data_dir().join(relative);
    assert!(
        path.exists(),
        "missing recording {}: set {DATA_ENV} to the folder holding market/ and workload/",
        path.display()
    );
    path
}

/// Returns the path of one reference file under `reference/`, beside the data folder, such as
/// `hpa-cases.json`.
///
/// # Panics
/// Panics with the path it looked at when the file is missing: meant for tests.
pub fn shared_reference_file(relative: &str) -> PathBuf {
    let path = shared_data_dir().join("../reference").join(relative);
    assert!(
        path.exists(),
        "missing reference file {}: set {DATA_ENV} to the data folder that has reference/ beside it",
        path.display()
    );
    path
}
