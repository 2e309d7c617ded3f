//! `tickscale hpa FILE`: evaluates HPA cases and prints one JSON object per case.
//!
//! The case format is documented in `tickscale::stages::decide::hpa::cases`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use tickscale::stages::decide::hpa::cases;

#[derive(Debug, clap::Args)]
pub struct HpaArgs {
    /// A JSON array of cases, in the format of shared/reference/hpa-cases.json.
    file: PathBuf,
}

/// Prints, for each case in order, `{"name", "replicas", ...}` on its own line.
pub fn hpa(args: HpaArgs) -> anyhow::Result<()> {
    let cases = cases::load(&args.file)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for case in &cases {
        let line = serde_json::to_string(&case.evaluate()).context("failed to write an outcome")?;
        writeln!(out, "{line}").context("failed to write to stdout")?;
    }
    Ok(())
}
