//! The written form of API and join tokens, and their secrets.
//!
//! A token is a public id (to find it) and a secret (to prove it); the state
//! keeps only the secret's SHA-256. A join token also carries the fingerprint
//! of the cluster CA, so the joining node can authenticate the cluster before
//! it sends the secret anywhere.

use std::fmt;
use std::str::FromStr;

use rand::Rng as _;
use sha2::{Digest, Sha256 as Sha256Hasher};
use stockade_policy::Sha256;

const API_PREFIX: &str = "stk";
const JOIN_PREFIX: &str = "stj";
const ID_LEN: usize = 12;
const SECRET_LEN: usize = 40;

/// A token that does not have the expected form.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed {kind} token: expected `{expected}`")]
pub struct MalformedToken {
    kind: &'static str,
    expected: &'static str,
}

/// A bearer token of the admin API: `stk_<id>_<secret>`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiTokenText {
    /// The public id.
    pub id: String,
    secret: String,
}

/// A join token: `stj_<id>_<secret>_<ca-fingerprint>`.
#[derive(Clone, PartialEq, Eq)]
pub struct JoinTokenText {
    /// The public id.
    pub id: String,
    secret: String,
    /// Hex SHA-256 of the cluster CA certificate.
    pub ca_fingerprint: String,
}

fn random_alphanumeric(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// SHA-256 of a token secret, as the state stores it.
pub fn secret_digest(secret: &str) -> Sha256 {
    Sha256(Sha256Hasher::digest(secret.as_bytes()).into())
}

impl ApiTokenText {
    /// A new token with a random id and secret.
    pub fn generate() -> Self {
        ApiTokenText {
            id: random_alphanumeric(ID_LEN),
            secret: random_alphanumeric(SECRET_LEN),
        }
    }

    /// SHA-256 of the secret.
    pub fn secret_digest(&self) -> Sha256 {
        secret_digest(&self.secret)
    }
}

impl JoinTokenText {
    /// A new token for the cluster whose CA has this fingerprint.
    pub fn generate(ca_fingerprint: &str) -> Self {
        JoinTokenText {
            id: random_alphanumeric(ID_LEN),
            secret: random_alphanumeric(SECRET_LEN),
            ca_fingerprint: ca_fingerprint.to_owned(),
        }
    }

    /// SHA-256 of the secret.
    pub fn secret_digest(&self) -> Sha256 {
        secret_digest(&self.secret)
    }

    /// The secret, to present to the member the node joins through.
    pub fn secret(&self) -> &str {
        &self.secret
    }
}

fn alphanumeric(part: &str) -> bool {
    !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric())
}

impl FromStr for ApiTokenText {
    type Err = MalformedToken;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().split('_').collect::<Vec<_>>()[..] {
            [API_PREFIX, id, secret] if alphanumeric(id) && alphanumeric(secret) => {
                Ok(ApiTokenText {
                    id: id.into(),
                    secret: secret.into(),
                })
            }
            _ => Err(MalformedToken {
                kind: "API",
                expected: "stk_<id>_<secret>",
            }),
        }
    }
}

impl FromStr for JoinTokenText {
    type Err = MalformedToken;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().split('_').collect::<Vec<_>>()[..] {
            [JOIN_PREFIX, id, secret, fingerprint]
                if alphanumeric(id)
                    && alphanumeric(secret)
                    && fingerprint.len() == 64
                    && fingerprint.chars().all(|c| c.is_ascii_hexdigit()) =>
            {
                Ok(JoinTokenText {
                    id: id.into(),
                    secret: secret.into(),
                    ca_fingerprint: fingerprint.to_ascii_lowercase(),
                })
            }
            _ => Err(MalformedToken {
                kind: "join",
                expected: "stj_<id>_<secret>_<64 hex digits of the CA fingerprint>",
            }),
        }
    }
}

impl fmt::Display for ApiTokenText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{API_PREFIX}_{}_{}", self.id, self.secret)
    }
}

impl fmt::Display for JoinTokenText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{JOIN_PREFIX}_{}_{}_{}",
            self.id, self.secret, self.ca_fingerprint
        )
    }
}

// Debug must never print a secret (tokens end up in error chains and logs).
impl fmt::Debug for ApiTokenText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiTokenText({})", self.id)
    }
}

impl fmt::Debug for JoinTokenText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JoinTokenText({})", self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_through_text_and_hide_their_secret() {
        let api = ApiTokenText::generate();
        assert_eq!(api.to_string().parse::<ApiTokenText>(), Ok(api.clone()));
        assert!(!format!("{api:?}").contains(&api.secret));
        let join = JoinTokenText::generate(&"ab".repeat(32));
        assert_eq!(join.to_string().parse::<JoinTokenText>(), Ok(join.clone()));
        assert_ne!(
            api.secret_digest(),
            JoinTokenText::generate("x").secret_digest()
        );
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for bad in [
            "",
            "stk_",
            "stk_id",
            "stk_i-d_secret",
            "stj_a_b_c",
            "stk_a_b_c",
        ] {
            assert!(bad.parse::<ApiTokenText>().is_err(), "{bad}");
        }
        let short_pin = format!("stj_a_b_{}", "ab".repeat(31));
        assert!(short_pin.parse::<JoinTokenText>().is_err());
    }
}
