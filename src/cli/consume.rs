//! `tickscale consume`: prints a topic's events as JSON lines, in event-time order across
//! partitions.

use std::io::Write;

use anyhow::Context;
use tickscale::bus::EmbeddedLog;
use tickscale::bus::Record;

use super::StateArgs;

const GROUP_PREFIX: &str = "consume/";

#[derive(Debug, clap::Args)]
pub struct ConsumeArgs {
    /// The topic, such as scaling.decisions.
    topic: String,
    /// Starts at the first event instead of after the group's last position.
    #[arg(long)]
    from_beginning: bool,
    /// The output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Json)]
    format: OutputFormat,
    /// The consumer group whose position is kept between calls.
    #[arg(long, default_value = "cli")]
    group: String,
    /// Stops after this many events.
    #[arg(long)]
    limit: Option<usize>,
    #[command(flatten)]
    state: StateArgs,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum OutputFormat {
    /// One JSON object per line.
    Json,
}

pub fn consume(args: ConsumeArgs) -> anyhow::Result<()> {
    let topology = args.state.topology()?;
    let topic = topology.topic(&args.topic).with_context(|| {
        let names: Vec<_> = topology.topics.iter().map(|t| t.name.as_str()).collect();
        format!(
            "unknown topic `{}`; the topics are {}",
            args.topic,
            names.join(", ")
        )
    })?;
    anyhow::ensure!(
        args.state.state.exists(),
        "no state folder at {}: run `tickscale run` first, or pass --state DIR",
        args.state.state.display()
    );
    let log = EmbeddedLog::open(&args.state.state, &topology.topics)?;
    let group = format!("{GROUP_PREFIX}{}", args.group);

    let mut lines = Vec::new();
    let mut starts = Vec::new();
    for partition in 0..topic.partitions {
        let from = match args.from_beginning {
            true => 0,
            false => log.position(&group, &topic.name, partition)?.unwrap_or(0),
        };
        let records = log.read(&topic.name, partition, from, usize::MAX)?;
        starts.push((partition, from));
        let decoded = to_json(&topic.schema, &records)
            .with_context(|| format!("failed to decode {} partition {partition}", topic.name))?;
        for ((time, json), record) in decoded.into_iter().zip(&records) {
            lines.push((time, partition, record.offset, json));
        }
    }
    lines.sort_by_key(|(time, partition, offset, _)| (*time, *partition, *offset));

    let shown = &lines[..lines.len().min(args.limit.unwrap_or(usize::MAX))];
    print_lines(shown)?;

    // The group moves past what was shown, partition by partition, and no further.
    let mut tx = log.transaction();
    for (partition, from) in starts {
        let last = shown
            .iter()
            .filter(|l| l.1 == partition)
            .map(|l| l.2 + 1)
            .max();
        tx.set_position(&group, &topic.name, partition, last.unwrap_or(from));
    }
    tx.commit()?;
    Ok(())
}

fn print_lines(lines: &[(i64, u32, u64, String)]) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for (_, _, _, json) in lines {
        if writeln!(out, "{json}").is_err() {
            return Ok(()); // The reader went away (a closed pipe): not an error.
        }
    }
    let _ = out.flush();
    Ok(())
}

/// Decodes records of one topic into events of type `T`.
///
/// # Errors
/// A record that does not decode, with its offset.
pub(super) fn decode<T: tickscale::events::Event>(records: &[Record]) -> anyhow::Result<Vec<T>> {
    let codec = tickscale::events::Codec::<T>::new();
    records
        .iter()
        .map(|record| {
            codec
                .decode(&mut record.value.as_slice())
                .with_context(|| format!("offset {}", record.offset))
        })
        .collect()
}

/// Returns every event of `topic` in the log, partition by partition.
///
/// # Errors
/// The log cannot be read or a record does not decode.
pub(super) fn read_all<T: tickscale::events::Event>(
    log: &EmbeddedLog,
    topic: &str,
) -> anyhow::Result<Vec<T>> {
    let mut out = Vec::new();
    for partition in 0..log.partitions(topic)? {
        let records = log.read(topic, partition, 0, usize::MAX)?;
        out.extend(
            decode::<T>(&records)
                .with_context(|| format!("failed to decode {topic} partition {partition}"))?,
        );
    }
    Ok(out)
}

/// Decodes records of the schema named `schema` into their event times and JSON.
fn to_json(schema: &str, records: &[Record]) -> anyhow::Result<Vec<(i64, String)>> {
    use tickscale::events::*;
    macro_rules! try_type {
        ($ty:ident) => {
            if schema == <$ty as Event>::NAME {
                let mut out = Vec::with_capacity(records.len());
                for event in decode::<$ty>(records)? {
                    out.push((event.event_time_us(), serde_json::to_string(&event)?));
                }
                return Ok(out);
            }
        };
    }
    tickscale::for_each_event!(try_type);
    anyhow::bail!("no event type has the schema `{schema}`")
}
