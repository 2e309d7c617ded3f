//! `tickscale consume`: prints a topic's events as JSON lines, in event-time order across
//! partitions, from the embedded log or (with `--brokers`) from Kafka, where it can also write
//! an Avro object container file.

use std::io::Write;

use anyhow::Context;
use tickscale::bus::EmbeddedLog;
use tickscale::bus::Record;

use tickscale::kafka::consume::{self as kafka_consume, ConsumeOptions, Delivered, Notice, Sink};
use tickscale::kafka::KafkaSettings;
use tickscale::pipeline::Routed;

use super::{KafkaArgs, StateArgs};

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
    /// The consumer group whose position is kept between calls [default: cli on the embedded
    /// log; none on Kafka, where nothing is then committed]
    #[arg(long)]
    group: Option<String>,
    /// Stops after this many events.
    #[arg(long)]
    limit: Option<usize>,
    /// Keeps waiting for new events at the end (Kafka only).
    #[arg(long, requires = "brokers")]
    follow: bool,
    #[command(flatten)]
    kafka: KafkaArgs,
    #[command(flatten)]
    state: StateArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum OutputFormat {
    /// One JSON object per line.
    Json,
    /// An Avro object container file with the topic's schema (Kafka only).
    Avro,
}

pub fn consume(args: ConsumeArgs) -> anyhow::Result<()> {
    if let Some(settings) = args.kafka.settings() {
        return consume_kafka(args, &settings);
    }
    anyhow::ensure!(
        args.format == OutputFormat::Json,
        "--format avro is only available with --brokers"
    );
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
    let group = format!("{GROUP_PREFIX}{}", args.group.as_deref().unwrap_or("cli"));

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

/// Reads the topic from Kafka and writes it as JSON lines or an Avro container file.
fn consume_kafka(args: ConsumeArgs, settings: &KafkaSettings) -> anyhow::Result<()> {
    let topology = args.state.topology()?;
    let topic = topology
        .topic(&args.topic)
        .with_context(|| format!("unknown topic `{}`", args.topic))?;
    let options = ConsumeOptions {
        group: args.group.clone(),
        from_beginning: args.from_beginning,
        follow: args.follow,
        limit: args.limit,
    };
    use tickscale::events::*;
    macro_rules! try_type {
        ($ty:ident) => {
            if topic.schema == <$ty as Event>::NAME {
                return read_as::<$ty>(settings, &args.topic, &options, args.format);
            }
        };
    }
    tickscale::for_each_event!(try_type);
    anyhow::bail!("no event type has the schema `{}`", topic.schema)
}

fn read_as<T: Routed>(
    settings: &KafkaSettings,
    topic: &str,
    options: &ConsumeOptions,
    format: OutputFormat,
) -> anyhow::Result<()> {
    let mut on_notice = |notice: Notice| match notice {
        Notice::Repeat { partition, offset } => {
            tracing::debug!(partition, offset, "Repeat dropped.")
        }
        Notice::Skipped {
            topic,
            partition,
            offset,
            reason,
        } => eprintln!("skipped {topic} partition {partition} offset {offset}: {reason}"),
    };
    let stdout = std::io::stdout();
    let out = std::io::BufWriter::new(stdout.lock());
    let report = match format {
        OutputFormat::Json => {
            let mut sink = JsonLines(out);
            kafka_consume::consume::<T>(settings, topic, options, &mut sink, &mut on_notice)?
        }
        OutputFormat::Avro => {
            let writer = apache_avro::Writer::new(T::schema(), Vec::new())?;
            let mut sink = AvroFile { writer, out };
            kafka_consume::consume::<T>(settings, topic, options, &mut sink, &mut on_notice)?
        }
    };
    if report.repeats > 0 || report.skipped > 0 {
        eprintln!(
            "{} event(s) written, {} repeat(s) dropped, {} undecodable message(s) skipped",
            report.written, report.repeats, report.skipped
        );
    }
    Ok(())
}

/// Writes one JSON object per line.
struct JsonLines<W: Write>(W);

impl<T: Routed, W: Write> Sink<T> for JsonLines<W> {
    fn write(&mut self, delivered: &Delivered<T>) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.0, &delivered.event)?;
        self.0.write_all(b"\n")
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Writes an Avro object container file; the header goes out with the first flush, so even an
/// empty topic gives a readable file.
///
/// The Avro writer fills a buffer that is then written out whole: apache-avro 0.22 hands each
/// block to a single `write` call, which a pipe may take only in part.
struct AvroFile<'a, W: Write> {
    writer: apache_avro::Writer<'a, Vec<u8>>,
    out: W,
}

impl<T: Routed, W: Write> Sink<T> for AvroFile<'_, W> {
    fn write(&mut self, delivered: &Delivered<T>) -> std::io::Result<()> {
        self.writer
            .append_ser(&delivered.event)
            .map(|_| ())
            .map_err(avro_io)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.writer.flush().map_err(avro_io)?;
        self.out.write_all(&std::mem::take(self.writer.get_mut()))?;
        self.out.flush()
    }
}

/// Unwraps the IO error inside an Avro error, so a closed pipe stays recognisable.
fn avro_io(error: apache_avro::Error) -> std::io::Error {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return std::io::Error::new(io.kind(), error.to_string());
        }
        source = cause.source();
    }
    std::io::Error::other(error)
}
