#!/usr/bin/env python3
"""Reads a tickscale topic from Kafka with confluent-kafka and fastavro, one JSON object a line.

Reads every partition of the topic from its first offset to its end (where the broker has
nothing more to fetch), checks that each message's header names the topic's schema (Avro single-object
encoding: C3 01 + the schema's CRC-64-AVRO fingerprint, little-endian; or, with
--schema-registry, registry framing: 00 + the schema id, big-endian), decodes the Avro datum
with the schema file from schemas/, drops repeats by `id` (tickscale delivers at least once),
and prints each event as a JSON object. Events come in the order they arrive, which is offset
order within a partition.

Messages that cannot be read are reported on standard error with their partition and offset;
the exit status is then 2.

    python3 examples/read_decisions.py --brokers localhost:9092 [--namespace NS]
"""

import argparse
import io
import json
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import fastavro
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from fastavro.schema import fingerprint, to_parsing_canonical_form

REPO = Path(__file__).resolve().parent.parent
SINGLE_OBJECT = b"\xc3\x01"
REGISTRY = b"\x00"


def main():
    args = parse_args()
    schema = load_topic_schema(args.topic, args.schemas)
    reader = Reader(schema, args.schema_registry)
    topic = f"{args.namespace}.{args.topic}" if args.namespace else args.topic
    consumer = Consumer({
        "bootstrap.servers": args.brokers,
        "group.id": "tickscale-read-decisions",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
    })
    try:
        refused = read_to_end(consumer, topic, reader, args.timeout)
    finally:
        consumer.close()
    sys.exit(2 if refused else 0)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--brokers", required=True, help="bootstrap servers, HOST:PORT[,...]")
    parser.add_argument("--namespace", default="", help="the topic prefix tickscale was given")
    parser.add_argument("--topic", default="scaling.decisions", help="a topology topic name")
    parser.add_argument("--schemas", type=Path, default=REPO / "schemas",
                        help="the folder of .avsc files [default: the repository's schemas/]")
    parser.add_argument("--schema-registry", metavar="URL",
                        help="accept registry framing, checking each id's schema there")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds to wait for the end of every partition")
    return parser.parse_args()


def load_topic_schema(topic, schemas):
    """Returns the parsed schema of the topology topic `topic`, from topology/topics.toml."""
    with open(REPO / "topology" / "topics.toml", "rb") as file:
        topics = tomllib.load(file)["topic"]
    names = [t["schema"] for t in topics if t["name"] == topic]
    if not names:
        sys.exit(f"{topic} is not a topic of topology/topics.toml")
    with open(schemas / f"{names[0]}.avsc") as file:
        return fastavro.parse_schema(json.load(file))


def print_of(schema):
    """Returns the 8 bytes of the schema's CRC-64-AVRO fingerprint, little-endian."""
    return bytes.fromhex(fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"))


class Reader:
    """Checks a message's header against the schema, and decodes the datum after it."""

    def __init__(self, schema, registry):
        self.schema = schema
        self.print = print_of(schema)
        self.registry = registry.rstrip("/") if registry else None
        self.registry_ids = {}

    def decode(self, message):
        if message[:2] == SINGLE_OBJECT:
            if message[2:10] != self.print:
                raise ValueError(f"written with schema fingerprint {message[2:10].hex()}, "
                                 f"expected {self.print.hex()}")
            return self.datum(message[10:])
        if message[:1] == REGISTRY and self.registry:
            self.check_registry_id(int.from_bytes(message[1:5], "big"))
            return self.datum(message[5:])
        raise ValueError(f"unknown header {message[:2].hex()} (registry framing needs "
                         "--schema-registry)")

    def datum(self, body):
        return fastavro.schemaless_reader(io.BytesIO(body), self.schema, self.schema)

    def check_registry_id(self, schema_id):
        if schema_id not in self.registry_ids:
            url = f"{self.registry}/schemas/ids/{schema_id}"
            with urllib.request.urlopen(url, timeout=10) as answer:
                text = json.load(answer)["schema"]
            self.registry_ids[schema_id] = print_of(fastavro.parse_schema(json.loads(text)))
        if self.registry_ids[schema_id] != self.print:
            raise ValueError(f"registry schema {schema_id} is not the topic's schema")


def read_to_end(consumer, topic, reader, timeout):
    """Prints every event of `topic` up to the end of each partition; returns the refusals."""
    ends = assign_from_beginning(consumer, topic)
    seen, refused = set(), 0
    deadline = time.monotonic() + timeout
    while ends:
        if time.monotonic() > deadline:
            sys.exit(f"timed out before the end of partitions {sorted(ends)} of {topic}")
        message = consumer.poll(0.5)
        if message is None:
            continue
        partition, offset = message.partition(), message.offset()
        if message.error():
            # The end is where the broker has nothing more to fetch, at or past the high
            # watermark: some brokers (tansu 0.6) report a high watermark short of the end.
            if message.error().code() != KafkaError._PARTITION_EOF:
                raise KafkaException(message.error())
            if offset >= ends.get(partition, 0):
                ends.pop(partition, None)
            continue
        try:
            event = reader.decode(message.value())
        except (ValueError, EOFError, OSError) as error:
            print(f"partition {partition} offset {offset}: {error}", file=sys.stderr)
            refused += 1
            continue
        key = event.get("id")
        if key is not None and key in seen:
            continue
        seen.add(key)
        print(json.dumps(event), flush=True)
    return refused


def assign_from_beginning(consumer, topic):
    """Assigns every non-empty partition from its first offset; returns their end offsets."""
    metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
    if metadata is None or metadata.error is not None or not metadata.partitions:
        sys.exit(f"topic {topic} does not exist (is the namespace right?)")
    ends, assignment = {}, []
    for partition in sorted(metadata.partitions):
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        if high > low:
            ends[partition] = high
            assignment.append(TopicPartition(topic, partition, low))
    consumer.assign(assignment)
    return ends


if __name__ == "__main__":
    main()
