//! What a client writes: one small record per request, the same bytes for
//! both systems.
//!
//! Client `c`'s `n`-th record is named `b<c>-<n>`. Its content is the JSON
//! document `{"mode":"learn","description":"<text>"}`, where `<text>` is a
//! fixed number of pseudo-random characters, different for each client.
//! Stockade gets it as `PUT /v1/zones/b<c>-<n>` (a new zone each time);
//! etcd gets the name as the key and the whole document as the value, through
//! its JSON gateway (`POST /v3/kv/put`, both base64-encoded as it requires).

use std::net::SocketAddr;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request};

/// A system under test, as the load generator sees it.
#[derive(Clone, Debug)]
pub enum Target {
    /// A Stockade node's admin API.
    Stockade {
        /// The node's API address.
        addr: SocketAddr,
        /// An admin token.
        token: String,
    },
    /// An etcd member's client URL.
    Etcd {
        /// The member's client address.
        addr: SocketAddr,
    },
}

/// The part of a client's records that does not change from one write to
/// the next, prepared once.
#[derive(Clone, Debug)]
pub struct ClientRecord {
    /// The JSON document every record of this client holds.
    document: Bytes,
    /// `document`, base64-encoded (etcd's gateway wants base64).
    document_base64: String,
}

impl ClientRecord {
    /// Client `client`'s record, with `text_bytes` characters of free text.
    pub fn new(client: usize, text_bytes: usize) -> ClientRecord {
        let text = filler(client as u64, text_bytes);
        let document = format!(r#"{{"mode":"learn","description":"{text}"}}"#);
        ClientRecord {
            document_base64: BASE64.encode(&document),
            document: Bytes::from(document),
        }
    }

    /// The size of the record's document in bytes.
    pub fn len(&self) -> usize {
        self.document.len()
    }
}

/// `len` characters from `a-z0-9`, pseudo-random but fixed by `seed`.
fn filler(seed: u64, len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    // xorshift64*: fast, deterministic, and good enough for filler text.
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let r = state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32;
            char::from(ALPHABET[(r % ALPHABET.len() as u64) as usize])
        })
        .collect()
}

impl Target {
    /// The short name of the system.
    pub fn system(&self) -> &'static str {
        match self {
            Target::Stockade { .. } => "stockade",
            Target::Etcd { .. } => "etcd",
        }
    }

    /// Where requests go.
    pub fn addr(&self) -> SocketAddr {
        match self {
            Target::Stockade { addr, .. } | Target::Etcd { addr } => *addr,
        }
    }

    /// The request that writes client `client`'s record number `seq`. It
    /// fails only if the token is not a valid header value.
    pub fn request(
        &self,
        client: usize,
        seq: u64,
        record: &ClientRecord,
    ) -> Result<Request<Full<Bytes>>, hyper::http::Error> {
        let name = format!("b{client}-{seq}");
        let builder = Request::builder()
            .header(HOST, self.addr().to_string())
            .header(CONTENT_TYPE, "application/json");
        match self {
            Target::Stockade { token, .. } => builder
                .method(Method::PUT)
                .uri(format!("/v1/zones/{name}"))
                .header(AUTHORIZATION, format!("Bearer {token}"))
                .body(Full::new(record.document.clone())),
            Target::Etcd { .. } => {
                let body = format!(
                    r#"{{"key":"{}","value":"{}"}}"#,
                    BASE64.encode(&name),
                    record.document_base64
                );
                builder
                    .method(Method::POST)
                    .uri("/v3/kv/put")
                    .body(Full::new(Bytes::from(body)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_have_a_fixed_size_and_differ_between_clients() {
        let a = ClientRecord::new(1, 100);
        let b = ClientRecord::new(2, 100);
        assert_eq!(a.len(), b.len());
        assert_ne!(a.document, b.document);
        assert_eq!(a.document, ClientRecord::new(1, 100).document);
        let doc: serde_json::Value =
            serde_json::from_slice(&a.document).expect("the record is JSON");
        assert_eq!(doc["description"].as_str().map(str::len), Some(100));
    }

    #[test]
    fn requests_name_the_record_and_carry_it() {
        let record = ClientRecord::new(3, 10);
        let addr: SocketAddr = "10.77.0.1:7480".parse().expect("an address");
        let stockade = Target::Stockade {
            addr,
            token: "stk_x".into(),
        }
        .request(3, 7, &record)
        .expect("a request");
        assert_eq!(stockade.uri(), "/v1/zones/b3-7");
        assert_eq!(stockade.method(), Method::PUT);
        assert_eq!(stockade.headers()[AUTHORIZATION], "Bearer stk_x");

        let etcd = Target::Etcd { addr }
            .request(3, 7, &record)
            .expect("a request");
        assert_eq!(etcd.uri(), "/v3/kv/put");
        assert_eq!(etcd.headers()[HOST], "10.77.0.1:7480");
    }
}
