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
    let delivered = print_lines(shown);

    // The group moves past what reached the reader, partition by partition, and only over an
    // unbroken run of offsets: events shown in time order may skip offsets, which stay unread.
    let mut tx = log.transaction();
    for (partition, from) in starts {
        let mut offsets: Vec<u64> = delivered
            .iter()
            .filter(|l| l.1 == partition)
            .map(|l| l.2)
            .collect();
        offsets.sort_unstable();
        let run = offsets
            .iter()
            .zip(from..)
            .take_while(|(offset, expected)| **offset == *expected);
        tx.set_position(&group, &topic.name, partition, from + run.count() as u64);
    }
    tx.commit()?;
    Ok(())
}

/// Lines are written in chunks, each flushed before the next, so a reader that goes away
/// (a closed pipe, as with `| head`) costs at most one chunk that is shown again next time.
const CHUNK: usize = 256;

/// Prints `lines` and returns those that reached standard output.
fn print_lines(lines: &[(i64, u32, u64, String)]) -> &[(i64, u32, u64, String)] {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut delivered = 0;
    for chunk in lines.chunks(CHUNK) {
        let written = chunk
            .iter()
            .try_for_each(|(_, _, _, json)| writeln!(out, "{json}"));
        if written.and_then(|()| out.flush()).is_err() {
            break;
        }
        delivered += chunk.len();
    }
    &lines[..delivered]
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
