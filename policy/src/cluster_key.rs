//! The cluster's own keys for what it signs: backups and compliance
//! reports carry an HMAC-SHA256 under a key derived from the cluster CA's
//! private key, which only the cluster's members hold, so a file edited by
//! anyone else — even one whose checksum was recomputed — is found out.
//!
//! Each use derives its own key (SHA-256 of a label naming the use, then the
//! CA key), so a MAC made for one use is never valid for another.

use hmac::Mac as _;
use sha2::Digest as _;

use crate::state::ClusterState;
use crate::Sha256;

/// What a signed file needs of the cluster's CA.
pub struct ClusterKey {
    fingerprint: String,
    mac_key: [u8; 32],
}

/// Why a cluster has no key to sign or check with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NoClusterKey {
    /// The cluster has no CA yet.
    #[error("not initialised")]
    NotInitialised,
    /// The CA certificate cannot be read.
    #[error("its certificate is not PEM")]
    NotPem,
}

impl ClusterKey {
    /// The key of `state`'s cluster for `purpose` (`backup`, `report`).
    pub fn of(state: &ClusterState, purpose: &str) -> Result<Self, NoClusterKey> {
        let ca = state
            .access
            .ca
            .as_ref()
            .ok_or(NoClusterKey::NotInitialised)?;
        let der = pem_body(&ca.cert_pem).ok_or(NoClusterKey::NotPem)?;
        let mut key = sha2::Sha256::new();
        key.update(format!("stockade {purpose} hmac key v1\0").as_bytes());
        key.update(ca.key_pem.0.as_bytes());
        Ok(ClusterKey {
            fingerprint: Sha256(sha2::Sha256::digest(der).into()).to_string(),
            mac_key: key.finalize().into(),
        })
    }

    /// Lowercase hex SHA-256 of the DER CA certificate: which cluster this
    /// is (join tokens pin the same fingerprint).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The HMAC-SHA256 of `message`.
    pub fn sign(&self, message: &[u8]) -> Sha256 {
        Sha256(
            self.mac()
                .chain_update(message)
                .finalize()
                .into_bytes()
                .into(),
        )
    }

    /// Whether `mac` is the HMAC-SHA256 of `message`, compared in constant
    /// time.
    pub fn verify(&self, message: &[u8], mac: &Sha256) -> bool {
        self.mac()
            .chain_update(message)
            .verify_slice(&mac.0)
            .is_ok()
    }

    fn mac(&self) -> hmac::Hmac<sha2::Sha256> {
        hmac::Hmac::new_from_slice(&self.mac_key)
            .unwrap_or_else(|e| unreachable!("HMAC takes a key of any length: {e}"))
    }
}

/// The DER bytes of the first PEM block of `pem`.
fn pem_body(pem: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let start = pem.find("-----BEGIN ")?;
    let rest = &pem[start..];
    let body_start = rest.find('\n')? + 1;
    let body_end = rest.find("-----END ")?;
    let body: String = rest
        .get(body_start..body_end)?
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}
