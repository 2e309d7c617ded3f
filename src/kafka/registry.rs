//! A client for the Confluent Schema Registry REST API, and the registry framings it yields.
//!
//! Consumes a registry's base URL and the event schemas; produces schema ids and, through
//! [`framings`], a [`Framings`] in which every event type is framed as `00` + the registry's id
//! of its schema under the subject `<topic>-value` (the subject name Confluent's serializers use
//! by default). Keeps nothing but the HTTP agent. Registering the same schema again under the
//! same subject returns the id it already has, so calling [`framings`] at every start is safe.
//!
//! Two requests are used: `POST /subjects/{subject}/versions` to register (the registry answers
//! with the id, a new one only for a schema it has not seen) and `GET /schemas/ids/{id}` to read
//! a schema back. After registering, [`framings`] reads each schema back and checks that its
//! CRC-64-AVRO fingerprint is ours, so a registry that rewrote a schema is caught at start and
//! not by a reader later.
//!
//! Caveats: no authentication, no schema references, and only the Avro schema type. The
//! registry's compatibility rules apply: a changed event type whose schema the subject's
//! compatibility level refuses fails [`framings`] with the registry's reason (HTTP 409).

use std::time::Duration;

use apache_avro::Schema;
use serde::Deserialize;

use super::{wire, Framings, KafkaSettings};

/// The media type of the registry's API, version 1.
const MEDIA_TYPE: &str = "application/vnd.schemaregistry.v1+json";
/// How long one request may take, connection included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the registry could not be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The registry could not be reached, or the connection broke; worth retrying.
    #[error("failed to reach the schema registry at {url}")]
    Unreachable {
        url: String,
        #[source]
        source: Box<ureq::Error>,
    },
    /// The registry answered with an error; worth retrying only for a 5xx status.
    #[error("the schema registry refused {request} with http {status} (error {code}): {message}")]
    Refused {
        request: String,
        status: u16,
        code: i64,
        message: String,
    },
    /// The registry answered something that is not its API's JSON.
    #[error("unexpected answer from the schema registry to {request}: {reason}")]
    Unexpected { request: String, reason: String },
    /// The schema the registry holds under an id is not valid Avro.
    #[error("the schema registry's schema {id} is not valid avro")]
    InvalidSchema {
        id: u32,
        #[source]
        source: Box<apache_avro::Error>,
    },
    /// The registry holds another schema under the id it just returned for ours.
    #[error(
        "the schema registry returned id {id} for {schema} on subject {subject}, but holds a \
         schema with fingerprint {found:016x} there instead of {expected:016x}"
    )]
    OtherSchema {
        schema: &'static str,
        subject: String,
        id: u32,
        found: u64,
        expected: u64,
    },
}

impl Error {
    /// Returns true when the same request may succeed later: the registry was unreachable or
    /// answered with a server error.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Unreachable { .. } => true,
            Self::Refused { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

/// A client of one schema registry.
pub struct RegistryClient {
    base_url: String,
    agent: ureq::Agent,
}

#[derive(Deserialize)]
struct IdAnswer {
    id: u32,
}

#[derive(Deserialize)]
struct SchemaAnswer {
    schema: String,
    #[serde(rename = "schemaType")]
    schema_type: Option<String>,
}

#[derive(Deserialize)]
struct ErrorAnswer {
    error_code: i64,
    message: String,
}

impl RegistryClient {
    /// Returns a client of the registry at `url` (`http://host:port`, with or without a final
    /// slash). Nothing is requested until a method is called.
    pub fn new(url: &str) -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(REQUEST_TIMEOUT))
            .build();
        Self {
            base_url: url.trim_end_matches('/').to_string(),
            agent: ureq::Agent::new_with_config(config),
        }
    }

    /// Registers `schema` under `subject` and returns its id; a schema the registry already
    /// holds keeps the id it has.
    ///
    /// # Errors
    /// Fails when the registry is unreachable, refuses the schema (an incompatible change: HTTP
    /// 409; an invalid schema: 422) or answers without an id.
    pub fn register(&self, subject: &str, schema: &Schema) -> Result<u32, Error> {
        let path = format!("/subjects/{}/versions", encode_path_segment(subject));
        let request = format!("POST {path}");
        let body = register_body(schema).map_err(|reason| Error::Unexpected {
            request: request.clone(),
            reason,
        })?;
        let response = self
            .agent
            .post(format!("{}{path}", self.base_url))
            .header("Content-Type", MEDIA_TYPE)
            .header("Accept", MEDIA_TYPE)
            .send(body.as_bytes())
            .map_err(|source| self.unreachable(source))?;
        let (status, text) = self.read(response)?;
        parse_id(&request, status, &text)
    }

    /// Returns the schema the registry holds under `id`.
    ///
    /// # Errors
    /// Fails when the registry is unreachable, does not know the id (HTTP 404, error 40403),
    /// or holds something that is not an Avro schema there.
    pub fn schema(&self, id: u32) -> Result<Schema, Error> {
        let path = format!("/schemas/ids/{id}");
        let response = self
            .agent
            .get(format!("{}{path}", self.base_url))
            .header("Accept", MEDIA_TYPE)
            .call()
            .map_err(|source| self.unreachable(source))?;
        let (status, text) = self.read(response)?;
        parse_schema(&format!("GET {path}"), id, status, &text)
    }

    fn read(&self, mut response: ureq::http::Response<ureq::Body>) -> Result<(u16, String), Error> {
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .read_to_string()
            .map_err(|source| self.unreachable(source))?;
        Ok((status, text))
    }

    fn unreachable(&self, source: ureq::Error) -> Error {
        Error::Unreachable {
            url: self.base_url.clone(),
            source: Box::new(source),
        }
    }
}

/// Returns the subject under which the values of the topology topic `topic` are registered:
/// the cluster topic's name followed by `-value`.
pub fn subject(settings: &KafkaSettings, topic: &str) -> String {
    format!("{}-value", settings.topic(topic))
}

/// Registers the schema of every event type under its topic's subject in the registry at
/// `url`, checks that the registry holds each as written, and returns framings that frame
/// every event type with its registry id.
///
/// # Errors
/// Fails at the first schema the registry cannot register or does not hand back unchanged; see
/// [`Error::is_retryable`].
pub fn framings(url: &str, settings: &KafkaSettings) -> Result<Framings, Error> {
    let client = RegistryClient::new(url);
    let mut framings = Framings::single_object();
    macro_rules! register {
        ($ty:ident) => {
            let name = <crate::events::$ty as crate::events::Event>::NAME;
            let schema = <crate::events::$ty as crate::events::Event>::schema();
            let topic = <crate::events::$ty as crate::pipeline::Routed>::TOPIC;
            let id = register_checked(&client, &subject(settings, topic), name, schema)?;
            framings.use_registry_id(name, id);
        };
    }
    crate::for_each_event!(register);
    Ok(framings)
}

fn register_checked(
    client: &RegistryClient,
    subject: &str,
    name: &'static str,
    schema: &Schema,
) -> Result<u32, Error> {
    let id = client.register(subject, schema)?;

    // A registry that normalised the schema into another canonical form would hand readers a
    // schema whose fingerprint is not the one the single-object readers check.
    let expected = wire::fingerprint(schema);
    let found = wire::fingerprint(&client.schema(id)?);
    if found != expected {
        return Err(Error::OtherSchema {
            schema: name,
            subject: subject.to_string(),
            id,
            found,
            expected,
        });
    }
    Ok(id)
}

/// Returns the JSON body of a registration: the schema's own JSON, as a string.
fn register_body(schema: &Schema) -> Result<String, String> {
    let schema_json = serde_json::to_string(schema).map_err(|e| e.to_string())?;
    serde_json::to_string(&serde_json::json!({ "schema": schema_json })).map_err(|e| e.to_string())
}

fn parse_id(request: &str, status: u16, text: &str) -> Result<u32, Error> {
    let answer: IdAnswer = parse_answer(request, status, text)?;
    Ok(answer.id)
}

fn parse_schema(request: &str, id: u32, status: u16, text: &str) -> Result<Schema, Error> {
    let answer: SchemaAnswer = parse_answer(request, status, text)?;
    // The registry leaves schemaType out for Avro, its default.
    if let Some(kind) = answer.schema_type.filter(|kind| kind != "AVRO") {
        return Err(Error::Unexpected {
            request: request.to_string(),
            reason: format!("schema {id} is of type {kind}, not AVRO"),
        });
    }
    Schema::parse_str(&answer.schema).map_err(|source| Error::InvalidSchema {
        id,
        source: Box::new(source),
    })
}

/// Parses a 2xx answer as `T`, and any other as the registry's error.
fn parse_answer<T: serde::de::DeserializeOwned>(
    request: &str,
    status: u16,
    text: &str,
) -> Result<T, Error> {
    let unexpected = |reason: String| Error::Unexpected {
        request: request.to_string(),
        reason,
    };
    if (200..300).contains(&status) {
        return serde_json::from_str(text).map_err(|e| unexpected(format!("{e} in {text:?}")));
    }
    match serde_json::from_str::<ErrorAnswer>(text) {
        Ok(error) => Err(Error::Refused {
            request: request.to_string(),
            status,
            code: error.error_code,
            message: error.message,
        }),
        Err(_) => Err(Error::Refused {
            request: request.to_string(),
            status,
            code: i64::from(status),
            message: text.chars().take(200).collect(),
        }),
    }
}

/// Percent-encodes everything in `segment` but the characters URLs leave unreserved.
fn encode_path_segment(segment: &str) -> String {
    let mut encoded = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                encoded.push(char::from(byte));
            }
            _ => encoded.push_str(&format!("%{byte:02X}")),
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io::{BufRead as _, BufReader, Read as _, Write as _};
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::events::{Event, ScalingDecision, TradeTick};
    use crate::pipeline::Routed;

    /// What the fake registry saw: (request line, content type) per request.
    type Seen = Arc<Mutex<Vec<(String, String)>>>;

    /// Starts a registry on loopback that keeps schemas as the Confluent one does (one id per
    /// distinct schema text), answering `Connection: close` to each request; `rewrite` makes it
    /// hand back a different schema than it was given. Returns its URL and what it saw.
    fn fake_registry(rewrite: bool) -> (String, Seen) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let url = format!("http://{}", listener.local_addr().expect("bound address"));
        let seen: Seen = Arc::default();
        let log = Arc::clone(&seen);
        std::thread::spawn(move || {
            let mut ids: BTreeMap<String, u32> = BTreeMap::new();
            for stream in listener.incoming() {
                let mut stream = stream.expect("accept");
                let (line, content_type, body) = read_request(&mut stream);
                log.lock().expect("lock").push((line.clone(), content_type));
                let answer = answer(&line, &body, &mut ids, rewrite);
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {MEDIA_TYPE}\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n{answer}",
                    answer.len()
                );
                stream.write_all(reply.as_bytes()).expect("reply");
            }
        });
        (url, seen)
    }

    fn read_request(stream: &mut std::net::TcpStream) -> (String, String, String) {
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).expect("request line");
        let (mut length, mut content_type) = (0, String::new());
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).expect("header");
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(": ").expect("header form");
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.parse().expect("length"),
                "content-type" => content_type = value.to_string(),
                _ => {}
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).expect("body");
        let body = String::from_utf8(body).expect("utf-8 body");
        (line.trim_end().to_string(), content_type, body)
    }

    fn answer(line: &str, body: &str, ids: &mut BTreeMap<String, u32>, rewrite: bool) -> String {
        if line.starts_with("POST ") {
            let request: serde_json::Value = serde_json::from_str(body).expect("json body");
            let schema = request["schema"]
                .as_str()
                .expect("schema string")
                .to_string();
            let next = u32::try_from(ids.len()).expect("few schemas") + 1;
            let id = *ids.entry(schema).or_insert(next);
            return format!(r#"{{"id":{id}}}"#);
        }
        let id: u32 = line
            .split('/')
            .nth(3)
            .and_then(|s| s.split(' ').next())
            .map_or(0, |s| s.parse().expect("numeric id"));
        let schema = match rewrite {
            true => TradeTick::schema().canonical_form(),
            false => ids
                .iter()
                .find(|(_, v)| **v == id)
                .expect("known id")
                .0
                .clone(),
        };
        serde_json::json!({ "schema": schema }).to_string()
    }

    #[test]
    fn a_registration_carries_the_schema_json_as_a_string_that_parses_to_the_same_schema() {
        let body: serde_json::Value =
            serde_json::from_str(&register_body(ScalingDecision::schema()).expect("serialises"))
                .expect("json");
        let text = body["schema"]
            .as_str()
            .expect("a string, as the registry wants");
        let parsed = Schema::parse_str(text).expect("valid avro");
        assert_eq!(
            wire::fingerprint(&parsed),
            wire::fingerprint(ScalingDecision::schema())
        );
    }

    #[test]
    fn a_registration_answer_yields_its_id_whatever_else_it_carries() {
        assert_eq!(parse_id("POST x", 200, r#"{"id":7}"#).expect("id"), 7);
        let newer = r#"{"id":12,"version":3,"guid":"0b7a","schemaType":"AVRO","schema":"\"int\""}"#;
        assert_eq!(parse_id("POST x", 200, newer).expect("id"), 12);
        assert!(matches!(
            parse_id("POST x", 200, r#"{"version":3}"#),
            Err(Error::Unexpected { .. })
        ));
    }

    #[test]
    fn an_incompatible_schema_is_refused_with_the_registry_message_and_is_not_retried() {
        let body = r#"{"error_code":409,"message":"Schema being registered is incompatible with an earlier schema for subject \"t.scaling.decisions-value\""}"#;
        let error = parse_id(
            "POST /subjects/t.scaling.decisions-value/versions",
            409,
            body,
        )
        .expect_err("refused");
        assert!(matches!(
            error,
            Error::Refused {
                status: 409,
                code: 409,
                ..
            }
        ));
        assert!(!error.is_retryable());
        assert!(
            error
                .to_string()
                .contains("incompatible with an earlier schema"),
            "{error}"
        );
    }

    #[test]
    fn a_server_error_without_json_is_refused_with_its_text_and_is_retryable() {
        let error =
            parse_schema("GET /schemas/ids/1", 1, 503, "<html>busy</html>").expect_err("refused");
        assert!(matches!(
            error,
            Error::Refused {
                status: 503,
                code: 503,
                ..
            }
        ));
        assert!(error.is_retryable());
        assert!(error.to_string().contains("<html>busy</html>"), "{error}");
    }

    #[test]
    fn an_unknown_id_is_refused_with_the_registry_error_code() {
        let body = r#"{"error_code":40403,"message":"Schema 99 not found"}"#;
        let error = parse_schema("GET /schemas/ids/99", 99, 404, body).expect_err("unknown");
        assert!(matches!(
            error,
            Error::Refused {
                status: 404,
                code: 40403,
                ..
            }
        ));
        assert!(!error.is_retryable());
    }

    #[test]
    fn a_schema_answer_is_parsed_and_a_non_avro_one_refused() {
        let body = r#"{"schema":"{\"type\":\"record\",\"name\":\"Tick\",\"namespace\":\"t\",\"fields\":[{\"name\":\"price\",\"type\":\"double\"}]}"}"#;
        let schema = parse_schema("GET /schemas/ids/1", 1, 200, body).expect("avro");
        assert_eq!(
            schema.canonical_form(),
            r#"{"name":"t.Tick","type":"record","fields":[{"name":"price","type":"double"}]}"#
        );
        let protobuf = r#"{"schema":"syntax = \"proto3\";","schemaType":"PROTOBUF"}"#;
        assert!(matches!(
            parse_schema("GET /schemas/ids/2", 2, 200, protobuf),
            Err(Error::Unexpected { .. })
        ));
        let broken = r#"{"schema":"{\"type\":\"record\"}"}"#;
        assert!(matches!(
            parse_schema("GET /schemas/ids/3", 3, 200, broken),
            Err(Error::InvalidSchema { id: 3, .. })
        ));
    }

    #[test]
    fn subjects_are_the_namespaced_topic_and_value_and_are_escaped_in_paths() {
        let mut settings = KafkaSettings::new("localhost:9092");
        assert_eq!(
            subject(&settings, "scaling.decisions"),
            "scaling.decisions-value"
        );
        settings.namespace = "t1".into();
        assert_eq!(
            subject(&settings, "scaling.decisions"),
            "t1.scaling.decisions-value"
        );
        assert_eq!(encode_path_segment("a b/c-d.e_f~"), "a%20b%2Fc-d.e_f~");
    }

    #[test]
    fn framings_register_every_event_type_under_its_topic_and_frame_with_the_ids() {
        let (url, seen) = fake_registry(false);
        let settings = KafkaSettings {
            brokers: "unused:9092".into(),
            namespace: "ns".into(),
            schema_registry: None,
        };
        let framings = framings(&format!("{url}/"), &settings).expect("registers");

        let seen = seen.lock().expect("lock").clone();
        let posts: Vec<_> = seen
            .iter()
            .filter(|(line, _)| line.starts_with("POST"))
            .collect();
        assert_eq!(posts.len(), crate::topology::REQUIRED_TOPICS.len());
        assert!(posts
            .iter()
            .all(|(_, content_type)| content_type == MEDIA_TYPE));
        let decisions = format!(
            "POST /subjects/ns.{}-value/versions HTTP/1.1",
            ScalingDecision::TOPIC
        );
        let position = posts.iter().position(|(line, _)| *line == decisions);
        let position = position.expect("decisions registered under their topic");

        // Ids are handed out in registration order, from 1, and every one was read back.
        let id = u32::try_from(position).expect("small") + 1;
        let framing = framings.of::<ScalingDecision>();
        let mut expected = vec![0];
        expected.extend_from_slice(&id.to_be_bytes());
        assert_eq!(framing.header(), expected.as_slice());
        assert_eq!(seen.len(), 2 * posts.len());
        assert!(seen.contains(&(format!("GET /schemas/ids/{id} HTTP/1.1"), String::new())));
    }

    #[test]
    fn a_registry_that_holds_another_schema_under_the_id_fails_framings() {
        let (url, _) = fake_registry(true);
        let settings = KafkaSettings::new("unused:9092");
        let error = framings(&url, &settings).err().expect("caught");
        assert!(matches!(error, Error::OtherSchema { .. }), "{error}");
        assert!(!error.is_retryable());
    }

    #[test]
    fn an_unreachable_registry_is_a_retryable_error() {
        // Bound then dropped: nothing listens on the port any more.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let client = RegistryClient::new(&format!("http://127.0.0.1:{port}"));
        let error = client.schema(1).expect_err("nothing listens");
        assert!(matches!(error, Error::Unreachable { .. }), "{error}");
        assert!(error.is_retryable());
    }
}
