//! What can go wrong delivering alerts, said without giving secrets away.

use std::time::Duration;

use super::describe;

/// Why a sink could not be set up or could not deliver.
///
/// Every message names the sink and where it delivers (`target`), but never
/// a secret: a Slack URL shows only its scheme and host, and tokens never
/// appear, not even when a receiver echoes them back in its answer.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The configuration cannot work (a URL that does not parse, a CA PEM
    /// without certificates, …); retrying will not help.
    #[error("alert sink `{sink}` ({target}): bad {field}: {reason}")]
    Config {
        /// The sink's name.
        sink: String,
        /// Where it delivers, secrets left out.
        target: String,
        /// The configuration field at fault, e.g. `target.ca_pem`.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// No connection could be made (refused, no route, name not resolved).
    #[error("alert sink `{sink}`: cannot reach {target}: {reason}")]
    Unreachable {
        /// The sink's name.
        sink: String,
        /// Where it delivers, secrets left out.
        target: String,
        /// What the network said.
        reason: String,
    },
    /// The receiver took longer than allowed.
    #[error("alert sink `{sink}`: {target} did not answer in time while {during}")]
    Timeout {
        /// The sink's name.
        sink: String,
        /// Where it delivers, secrets left out.
        target: String,
        /// What was being done: `connecting`, `sending`, ….
        during: &'static str,
    },
    /// The receiver answered and refused the delivery (HTTP status other
    /// than 2xx, or an Elasticsearch bulk item that failed).
    #[error("alert sink `{sink}`: {target} rejected the delivery with status {status}: {body}")]
    Rejected {
        /// The sink's name.
        sink: String,
        /// Where it delivers, secrets left out.
        target: String,
        /// The HTTP status (or the failed bulk item's status).
        status: u16,
        /// The start of the receiver's answer, on one line.
        body: String,
        /// How long the receiver asked us to wait (HTTP 429 and 503 with a
        /// `Retry-After` header).
        retry_after: Option<Duration>,
    },
    /// Reading or writing an open connection failed; it has been dropped and
    /// the next send connects again.
    #[error("alert sink `{sink}`: connection to {target} failed: {source}")]
    Io {
        /// The sink's name.
        sink: String,
        /// Where it delivers, secrets left out.
        target: String,
        /// The error of the operating system.
        #[source]
        source: std::io::Error,
    },
    /// The TLS handshake failed: the receiver's certificate is not signed by
    /// the configured CA, names another host, or the peer does not speak TLS.
    #[error("alert sink `{sink}`: TLS with {target} failed: {reason}")]
    Tls {
        /// The sink's name.
        sink: String,
        /// Where it delivers, secrets left out.
        target: String,
        /// What the handshake said.
        reason: String,
    },
    /// The receiver answered 2xx with a body that does not say what the
    /// protocol requires (an Elasticsearch bulk answer that is not JSON).
    #[error("alert sink `{sink}`: {target} gave an answer that cannot be read: {reason}")]
    BadResponse {
        /// The sink's name.
        sink: String,
        /// Where it delivers, secrets left out.
        target: String,
        /// What is wrong with the answer.
        reason: String,
    },
}

impl SinkError {
    /// How long the receiver asked to be left alone, from the `Retry-After`
    /// header of an HTTP 429 or 503 answer; `None` otherwise.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            SinkError::Rejected {
                status: 429 | 503,
                retry_after,
                ..
            } => *retry_after,
            _ => None,
        }
    }
}

/// A sink's name and secret-free address, from which its errors are made,
/// and the secrets that must be scrubbed from anything a peer says.
#[derive(Clone)]
pub(crate) struct Origin {
    sink: String,
    target: String,
    secrets: Vec<String>,
}

impl Origin {
    /// The origin of sink `sink` delivering to `target` (already free of
    /// secrets); `secrets` are removed from every reason and body excerpt.
    pub(crate) fn new(sink: &str, target: String, secrets: Vec<String>) -> Origin {
        let secrets = secrets.into_iter().filter(|s| !s.is_empty()).collect();
        Origin {
            sink: sink.to_owned(),
            target,
            secrets,
        }
    }

    /// The secret-free address errors name.
    pub(crate) fn target(&self) -> &str {
        &self.target
    }

    /// `text` with every secret replaced by a marker, on one line, at most
    /// `max` characters long.
    pub(crate) fn scrub(&self, text: &str, max: usize) -> String {
        let mut clean = text.to_owned();
        for secret in &self.secrets {
            clean = clean.replace(secret.as_str(), "<redacted>");
        }
        describe::cut(&describe::one_line(&clean), max)
    }

    /// A configuration error in `field`.
    pub(crate) fn config(&self, field: &'static str, reason: impl Into<String>) -> SinkError {
        SinkError::Config {
            sink: self.sink.clone(),
            target: self.target.clone(),
            field,
            reason: self.scrub(&reason.into(), 500),
        }
    }

    /// No connection could be made.
    pub(crate) fn unreachable(&self, reason: impl Into<String>) -> SinkError {
        SinkError::Unreachable {
            sink: self.sink.clone(),
            target: self.target.clone(),
            reason: self.scrub(&reason.into(), 500),
        }
    }

    /// A deadline passed while doing `during`.
    pub(crate) fn timeout(&self, during: &'static str) -> SinkError {
        SinkError::Timeout {
            sink: self.sink.clone(),
            target: self.target.clone(),
            during,
        }
    }

    /// The receiver refused with `status`; `body` is what it said.
    pub(crate) fn rejected(
        &self,
        status: u16,
        body: &str,
        retry_after: Option<Duration>,
    ) -> SinkError {
        SinkError::Rejected {
            sink: self.sink.clone(),
            target: self.target.clone(),
            status,
            body: self.scrub(body, 300),
            retry_after,
        }
    }

    /// An open connection failed.
    pub(crate) fn io(&self, source: std::io::Error) -> SinkError {
        SinkError::Io {
            sink: self.sink.clone(),
            target: self.target.clone(),
            source,
        }
    }

    /// The TLS handshake failed.
    pub(crate) fn tls(&self, reason: impl Into<String>) -> SinkError {
        SinkError::Tls {
            sink: self.sink.clone(),
            target: self.target.clone(),
            reason: self.scrub(&reason.into(), 500),
        }
    }

    /// A 2xx answer that does not say what it must.
    pub(crate) fn bad_response(&self, reason: impl Into<String>) -> SinkError {
        SinkError::BadResponse {
            sink: self.sink.clone(),
            target: self.target.clone(),
            reason: self.scrub(&reason.into(), 300),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        Origin::new(
            "ops",
            "https://hooks.slack.com/…".into(),
            vec![
                "https://hooks.slack.com/services/T0/B0/XYZ".into(),
                "/services/T0/B0/XYZ".into(),
            ],
        )
    }

    #[test]
    fn secrets_are_scrubbed_from_what_peers_say() {
        let err = origin().rejected(
            404,
            "no_service for\nhttps://hooks.slack.com/services/T0/B0/XYZ",
            None,
        );
        let text = err.to_string();
        assert!(!text.contains("XYZ"), "{text}");
        assert!(text.contains("404") && text.contains("no_service for <redacted>"));
        assert!(text.contains("`ops`"));
    }

    #[test]
    fn excerpts_are_cut_to_length() {
        let long = "é".repeat(1000);
        let cut = origin().scrub(&long, 10);
        assert_eq!(cut.chars().count(), 10);
    }

    #[test]
    fn only_throttling_answers_carry_a_retry_after() {
        let o = origin();
        let wait = Some(Duration::from_secs(3));
        assert_eq!(o.rejected(429, "", wait).retry_after(), wait);
        assert_eq!(o.rejected(503, "", wait).retry_after(), wait);
        assert_eq!(o.rejected(500, "", wait).retry_after(), None);
        assert_eq!(o.timeout("sending").retry_after(), None);
    }
}
