//! The CA, node keys, CSRs and the node certificates they produce.

use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::identity;
use crate::identity::{parse_certs, parse_node_dns_name};
use crate::{node_id_of, CaCertificate, ClusterCa, NodeIdentity, NodeKey, PkiError};

fn der_of(pem: &str) -> Vec<u8> {
    parse_certs(pem).expect("pem").remove(0).to_vec()
}

#[test]
fn ca_round_trips_through_pem_and_keeps_its_fingerprint() {
    let ca = ClusterCa::generate("hospital").expect("ca");
    let fp = ca.fingerprint();
    assert_eq!(fp.len(), 64);
    assert!(fp.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')));
    assert_eq!(fp, crate::sha256_fingerprint(&der_of(&ca.cert_pem())));

    let again = ClusterCa::from_pem(&ca.cert_pem(), &ca.key_pem()).expect("reload");
    assert_eq!(again.fingerprint(), fp);
    assert_eq!(
        CaCertificate::from_pem(&ca.cert_pem())
            .expect("ca cert")
            .fingerprint(),
        fp
    );

    // A reloaded CA still issues certificates that chain to the original one.
    let id = identity(&again, 5);
    assert_eq!(id.node_id(), 5);
    NodeIdentity::from_pem(
        &crate::identity::cert_pem(&id.cert_chain()[0]),
        &NodeKey::generate().expect("k").key_pem(),
        &ca.certificate(),
    )
    .expect_err("a foreign key does not match the certificate");
}

#[test]
fn ca_refuses_a_key_of_another_ca_and_a_bad_name() {
    let a = ClusterCa::generate("a").expect("a");
    let b = ClusterCa::generate("b").expect("b");
    assert!(matches!(
        ClusterCa::from_pem(&a.cert_pem(), &b.key_pem()),
        Err(PkiError::KeyMismatch)
    ));
    assert!(matches!(
        ClusterCa::generate("  "),
        Err(PkiError::BadClusterName(_))
    ));
}

#[test]
fn the_ca_decides_the_node_id_whatever_the_csr_asks() {
    let ca = ClusterCa::generate("hospital").expect("ca");
    let key = NodeKey::generate().expect("key");
    let csr = key.csr_pem(7).expect("csr");
    let cert_pem = ca.sign_node_csr(&csr, 3).expect("sign");
    let der = der_of(&cert_pem);
    assert_eq!(node_id_of(&der), Some(3));

    let (_, cert) = X509Certificate::from_der(&der).expect("x509");
    let cn: Vec<_> = cert
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok())
        .collect();
    assert_eq!(cn, ["n3.node.stockade"]);
    assert!(!cert.is_ca());
    let eku = cert
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::ExtendedKeyUsage(eku) => Some(eku.clone()),
            _ => None,
        })
        .expect("EKU extension");
    assert!(eku.client_auth && eku.server_auth);
    let days =
        (cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp()) / 86_400;
    assert!((365..=366).contains(&days), "validity of {days} days");

    // The certificate belongs to the node's own key, which never left it.
    let id = NodeIdentity::from_pem(&cert_pem, &key.key_pem(), &ca.certificate()).expect("id");
    assert_eq!(id.node_id(), 3);
    assert_eq!(id.cert_chain().len(), 2);
    assert_eq!(id.cert_chain()[1].as_ref(), ca.certificate().der().as_ref());
}

#[test]
fn node_identity_refuses_foreign_certificates_and_keys() {
    let ca = ClusterCa::generate("a").expect("a");
    let other = ClusterCa::generate("b").expect("b");
    let key = NodeKey::generate().expect("key");
    let cert = other
        .sign_node_csr(&key.csr_pem(1).expect("csr"), 1)
        .expect("sign");
    assert!(matches!(
        NodeIdentity::from_pem(&cert, &key.key_pem(), &ca.certificate()),
        Err(PkiError::NotIssuedByCa)
    ));
    let stranger = NodeKey::generate().expect("key");
    let cert = ca
        .sign_node_csr(&key.csr_pem(1).expect("csr"), 1)
        .expect("sign");
    assert!(matches!(
        NodeIdentity::from_pem(&cert, &stranger.key_pem(), &ca.certificate()),
        Err(PkiError::KeyMismatch)
    ));
    // A node certificate is not a CA.
    assert!(matches!(
        CaCertificate::from_pem(&cert),
        Err(PkiError::NotCa)
    ));
    // A node key survives its PEM.
    let reloaded = NodeKey::from_pem(&key.key_pem()).expect("reload");
    assert_eq!(reloaded.key_pem(), key.key_pem());
}

#[test]
fn garbage_csrs_and_pems_are_errors() {
    let ca = ClusterCa::generate("a").expect("a");
    assert!(ca.sign_node_csr("not a csr", 1).is_err());
    let csr = NodeKey::generate().expect("k").csr_pem(1).expect("csr");
    // Flip a character inside the base64 body: the signature no longer holds
    // (or the DER no longer parses); either way nothing is signed.
    let mut tampered: Vec<char> = csr.chars().collect();
    let i = tampered.len() / 2;
    tampered[i] = if tampered[i] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    assert!(ca.sign_node_csr(&tampered, 1).is_err());
    assert!(CaCertificate::from_pem("").is_err());
    assert!(ClusterCa::from_pem("x", "y").is_err());
}

#[test]
fn only_canonical_node_names_carry_an_id() {
    assert_eq!(parse_node_dns_name("n1.node.stockade"), Some(1));
    assert_eq!(parse_node_dns_name("n0.node.stockade"), Some(0));
    assert_eq!(
        parse_node_dns_name(&format!("n{}.node.stockade", u64::MAX)),
        Some(u64::MAX)
    );
    for bad in [
        "n01.node.stockade",
        "n+1.node.stockade",
        "n.node.stockade",
        "nx.node.stockade",
        "1.node.stockade",
        "n1.node.stockade.evil",
        "n1.nodes.stockade",
        "n18446744073709551616.node.stockade",
    ] {
        assert_eq!(parse_node_dns_name(bad), None, "{bad}");
    }
}

#[test]
fn the_stateless_reset_secret_survives_a_restart_and_is_the_nodes_own() {
    let ca = ClusterCa::generate("test").expect("ca");
    let key = NodeKey::generate().expect("key");
    let cert = ca
        .sign_node_csr(&key.csr_pem(7).expect("csr"), 7)
        .expect("sign");
    let load = || NodeIdentity::from_pem(&cert, &key.key_pem(), &ca.certificate()).expect("load");
    // The same key on disk, loaded by the next process: the same secret,
    // so its resets are believed by peers of the previous process.
    assert_eq!(
        load().stateless_reset_secret(),
        load().stateless_reset_secret()
    );
    assert_ne!(
        load().stateless_reset_secret(),
        identity(&ca, 7).stateless_reset_secret(),
        "another key, another secret"
    );
}

#[test]
fn certificate_info_reads_the_node_serial_and_validity() {
    let ca = ClusterCa::generate("hospital").expect("ca");
    let one = identity(&ca, 6);
    let two = identity(&ca, 6);
    let info = crate::CertificateInfo::from_pem(&one.cert_pem()).expect("info");
    assert_eq!(info.node_id, Some(6));
    assert_eq!(info.serial.len(), 32, "128-bit serials: {}", info.serial);
    assert_eq!(
        info.fingerprint,
        crate::sha256_fingerprint(&one.cert_chain()[0])
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    assert!(info.not_before <= now && now < info.not_after);
    assert!(info.not_after - now > 364 * 86_400, "valid for a year");
    let other = crate::CertificateInfo::from_pem(&two.cert_pem()).expect("info");
    assert_ne!(
        info.serial, other.serial,
        "every certificate has its own serial"
    );
    crate::CertificateInfo::from_pem("not a certificate").expect_err("garbage");
}
