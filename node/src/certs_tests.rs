//! The certificate files: renewal in place, and recovery from a renewal a
//! crash cut short.

use super::*;

/// A data directory with a CA and node 3's first certificate, as `join`
/// leaves it.
fn data_dir() -> (tempfile::TempDir, ClusterCa) {
    let dir = tempfile::tempdir().expect("temp dir");
    fs::create_dir_all(dir.path().join(TLS_DIR)).expect("tls dir");
    let ca = ClusterCa::generate("test").expect("ca");
    let (cert, key) = issue(&ca);
    fs::write(tls_path(dir.path(), CA_FILE), ca.cert_pem()).expect("ca");
    fs::write(tls_path(dir.path(), CERT_FILE), cert).expect("cert");
    fs::write(tls_path(dir.path(), KEY_FILE), key).expect("key");
    (dir, ca)
}

/// A certificate and key for node 3.
fn issue(ca: &ClusterCa) -> (String, String) {
    let key = NodeKey::generate().expect("key");
    let cert = ca
        .sign_node_csr(&key.csr_pem(3).expect("csr"), 3)
        .expect("sign");
    (cert, key.key_pem())
}

fn serial(identity: &NodeIdentity) -> String {
    CertificateInfo::from_pem(&identity.cert_pem())
        .expect("info")
        .serial
}

/// The SHA-256 of the first certificate of a PEM text.
fn fingerprint(pem: &str) -> String {
    CertificateInfo::from_pem(pem).expect("info").fingerprint
}

fn leftovers(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir.join(TLS_DIR))
        .expect("tls dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(NEW) || n.ends_with(OLD))
        .collect();
    names.sort();
    names
}

#[test]
fn a_renewal_replaces_the_pair_and_drops_the_backups_once_done() {
    let (dir, ca) = data_dir();
    let (_, before) = load_identity(dir.path()).expect("load");
    let (cert, key) = issue(&ca);
    install(dir.path(), &cert, &key).expect("install");
    assert_eq!(leftovers(dir.path()), ["node.key.old", "node.pem.old"]);
    let (_, after) = load_identity(dir.path()).expect("load the new pair");
    assert_eq!(fingerprint(&after.cert_pem()), fingerprint(&cert));
    assert_ne!(serial(&after), serial(&before));
    drop_backups(dir.path()).expect("drop");
    assert!(leftovers(dir.path()).is_empty());
    use std::os::unix::fs::PermissionsExt as _;
    let mode = fs::metadata(tls_path(dir.path(), KEY_FILE))
        .expect("key")
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "the new key is the owner's only");
}

#[test]
fn a_crash_between_the_renames_completes_the_renewal() {
    let (dir, ca) = data_dir();
    let (cert, key) = issue(&ca);
    // As `install` leaves it after renaming the key, before the certificate.
    let live_key = tls_path(dir.path(), KEY_FILE);
    fs::copy(&live_key, with_suffix(&live_key, OLD)).expect("backup");
    fs::write(&live_key, &key).expect("new key");
    fs::write(with_suffix(&tls_path(dir.path(), CERT_FILE), NEW), &cert).expect("new cert");
    let (_, identity) = load_identity(dir.path()).expect("recovered");
    assert_eq!(
        fingerprint(&identity.cert_pem()),
        fingerprint(&cert),
        "the renewal was completed"
    );
    assert_eq!(
        fs::read_to_string(tls_path(dir.path(), CERT_FILE)).expect("cert"),
        cert
    );
}

#[test]
fn a_crash_without_the_new_certificate_puts_the_old_key_back() {
    let (dir, ca) = data_dir();
    let (_, before) = load_identity(dir.path()).expect("load");
    let (_, key) = issue(&ca);
    let live_key = tls_path(dir.path(), KEY_FILE);
    fs::copy(&live_key, with_suffix(&live_key, OLD)).expect("backup");
    fs::write(&live_key, &key).expect("new key");
    let (_, identity) = load_identity(dir.path()).expect("recovered");
    assert_eq!(serial(&identity), serial(&before), "the old pair is back");
    // A pair that matches nothing is still an error naming the certificate.
    fs::write(&live_key, issue(&ca).1).expect("stray key");
    let err = load_identity(dir.path()).expect_err("mismatch");
    assert!(format!("{err:#}").contains("node certificate"), "{err:#}");
}

#[test]
fn the_status_warns_within_thirty_days_of_the_end() {
    let ca = ClusterCa::generate("test").expect("ca");
    let (cert, _) = issue(&ca);
    let info = CertificateInfo::from_pem(&cert).expect("info");
    let status = CertStatus::of(&cert, &ca.certificate(), info.not_before).expect("status");
    assert_eq!(status.node_id, 3);
    assert!(!status.expires_soon, "{status:?}");
    assert_eq!(status.ca_fingerprint, ca.fingerprint());
    assert!(status.not_after.ends_with('Z'), "{}", status.not_after);
    let late =
        CertStatus::of(&cert, &ca.certificate(), info.not_after - 10 * 86_400).expect("status");
    assert!(late.expires_soon && late.days_left == 10, "{late:?}");
    let gone = CertStatus::of(&cert, &ca.certificate(), info.not_after + 1).expect("status");
    assert!(gone.expires_soon && gone.days_left < 0, "{gone:?}");
}
