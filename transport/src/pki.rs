//! The cluster's public-key infrastructure (rcgen, ECDSA P-256).
//!
//! `stockade init` makes a [`ClusterCa`]; a joining node makes its own
//! [`NodeKey`] and sends only a CSR, so private keys never leave their node;
//! the CA signs it for the node id *it* chose. Nothing here touches the disk:
//! callers persist the PEM texts.

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
    PKCS_ECDSA_P256_SHA256,
};
use ring::rand::SecureRandom;
use rustls::pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};

use crate::identity::{node_dns_name, parse_one_cert, parse_x509, CaCertificate};
use crate::NodeId;

/// How long the CA certificate is valid.
const CA_VALIDITY: Duration = Duration::days(3650);
/// How long a node certificate is valid; renewal is the caller's business.
const NODE_VALIDITY: Duration = Duration::days(365);
/// Back-dating of `notBefore`, so a peer whose clock lags a little accepts a fresh certificate.
const CLOCK_SKEW: Duration = Duration::hours(1);

/// Why a PKI operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// rcgen could not generate, parse or sign.
    #[error("certificate operation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// A PEM text did not parse.
    #[error("invalid PEM: {0}")]
    Pem(String),
    /// A PEM text held the wrong number of certificates.
    #[error("expected one certificate in the PEM text, found {0}")]
    CertCount(usize),
    /// A certificate did not parse as X.509.
    #[error("invalid certificate: {0}")]
    BadCertificate(String),
    /// A certificate used as the CA is not marked as a CA.
    #[error("the certificate is not a CA certificate")]
    NotCa,
    /// A private key does not belong to the certificate it came with.
    #[error("the private key does not match the certificate")]
    KeyMismatch,
    /// A node certificate names no node id.
    #[error("the certificate names no node id (expected the DNS name n<id>.node.stockade)")]
    NoNodeId,
    /// A node certificate is not signed by the cluster CA.
    #[error("the certificate is not signed by the cluster CA")]
    NotIssuedByCa,
    /// A cluster name is unusable.
    #[error("invalid cluster name {0:?}: it must be non-empty and printable")]
    BadClusterName(String),
    /// A fingerprint is not 64 hex digits.
    #[error("invalid CA fingerprint {0:?}: expected 64 hex digits (SHA-256)")]
    BadFingerprint(String),
    /// The system's random generator failed.
    #[error("the system random generator failed")]
    Random,
}

/// A fresh P-256 key pair.
fn new_key() -> Result<KeyPair, PkiError> {
    Ok(KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?)
}

/// A random positive 128-bit serial number (RFC 5280 asks for uniqueness per CA).
fn random_serial() -> Result<SerialNumber, PkiError> {
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| PkiError::Random)?;
    // A clear top bit keeps the DER INTEGER positive without a padding byte.
    bytes[0] &= 0x7f;
    Ok(SerialNumber::from_slice(&bytes))
}

/// Sets `notBefore`/`notAfter` from now.
fn set_validity(params: &mut CertificateParams, validity: Duration) {
    let now = OffsetDateTime::now_utc();
    params.not_before = now - CLOCK_SKEW;
    params.not_after = now + validity;
}

/// The cluster certificate authority: its certificate and private key. Only
/// nodes that admit new members need it.
pub struct ClusterCa {
    issuer: Issuer<'static, KeyPair>,
    cert: CaCertificate,
}

impl ClusterCa {
    /// Makes a new self-signed CA for `cluster_name` (shown in its subject).
    pub fn generate(cluster_name: &str) -> Result<ClusterCa, PkiError> {
        if cluster_name.trim().is_empty() || cluster_name.chars().any(char::is_control) {
            return Err(PkiError::BadClusterName(cluster_name.to_owned()));
        }
        let key = new_key()?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "Stockade");
        dn.push(DnType::CommonName, format!("{cluster_name} cluster CA"));
        params.distinguished_name = dn;
        // Path length 0: the CA signs node certificates only, never another CA.
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.serial_number = Some(random_serial()?);
        set_validity(&mut params, CA_VALIDITY);
        let cert = params.self_signed(&key)?;
        let cert = CaCertificate::from_der(cert.der().clone())?;
        Ok(ClusterCa {
            issuer: Issuer::new(params, key),
            cert,
        })
    }

    /// Loads a CA the caller persisted, checking the key belongs to the certificate.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<ClusterCa, PkiError> {
        let key = KeyPair::from_pem(key_pem)?;
        let der: CertificateDer<'static> = parse_one_cert(cert_pem)?;
        if parse_x509(&der)?
            .public_key()
            .subject_public_key
            .data
            .as_ref()
            != key.public_key_raw()
        {
            return Err(PkiError::KeyMismatch);
        }
        let cert = CaCertificate::from_der(der)?;
        let issuer = Issuer::from_ca_cert_der(cert.der(), key)?;
        Ok(ClusterCa { issuer, cert })
    }

    /// The CA certificate as PEM (public; every node keeps it).
    pub fn cert_pem(&self) -> String {
        self.cert.pem().to_owned()
    }

    /// The CA private key as PKCS#8 PEM (secret; store it with care).
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// The CA certificate alone, as every node keeps it.
    pub fn certificate(&self) -> CaCertificate {
        self.cert.clone()
    }

    /// Lowercase hex SHA-256 of the CA certificate (DER): the pin in join tokens.
    pub fn fingerprint(&self) -> String {
        self.cert.fingerprint()
    }

    /// Issues a certificate (PEM) for `node_id` to the key in `csr_pem`.
    ///
    /// Only the CSR's public key is used, after its signature proves the
    /// requester holds the private key: names, usages and validity come from
    /// the CA, so a CSR cannot ask for another node's id. The certificate names
    /// the node as DNS SAN and CN `n{id}.node.stockade`, is valid for a year and
    /// allows both client and server authentication.
    pub fn sign_node_csr(&self, csr_pem: &str, node_id: NodeId) -> Result<String, PkiError> {
        // Parsing verifies the CSR's self-signature.
        let csr = CertificateSigningRequestParams::from_pem(csr_pem)?;
        let name = node_dns_name(node_id);
        let mut params = CertificateParams::new(vec![name.clone()])?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "Stockade");
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(random_serial()?);
        set_validity(&mut params, NODE_VALIDITY);
        Ok(params.signed_by(&csr.public_key, &self.issuer)?.pem())
    }
}

impl std::fmt::Debug for ClusterCa {
    // The private key stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterCa")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

/// A node's own private key, made on the node and never sent anywhere.
pub struct NodeKey {
    key: KeyPair,
}

impl NodeKey {
    /// A fresh P-256 key.
    pub fn generate() -> Result<NodeKey, PkiError> {
        Ok(NodeKey { key: new_key()? })
    }

    /// Loads a key the caller persisted (PKCS#8 PEM).
    pub fn from_pem(key_pem: &str) -> Result<NodeKey, PkiError> {
        Ok(NodeKey {
            key: KeyPair::from_pem(key_pem)?,
        })
    }

    /// The key as PKCS#8 PEM (secret; the node stores it).
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// A certificate signing request (PEM) for this key. The id it asks for is
    /// informational: the CA decides the id it certifies.
    pub fn csr_pem(&self, node_id: NodeId) -> Result<String, PkiError> {
        let name = node_dns_name(node_id);
        let mut params = CertificateParams::new(vec![name.clone()])?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        Ok(params.serialize_request(&self.key)?.pem()?)
    }
}

impl std::fmt::Debug for NodeKey {
    // The private key stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeKey").finish_non_exhaustive()
    }
}
