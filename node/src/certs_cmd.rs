//! `stockade certs status` and `stockade certs rotate`: the certificate of
//! the node behind the admin API (by default this host's).

use anyhow::{Context as _, Result};

use crate::admin_client::call;
use crate::certs::{CertStatus, Rotated, TunnelRenewal};
use crate::cli::{ApiArgs, CertsCommand, CertsStatusArgs};

/// Runs a `stockade certs` subcommand.
pub fn run(command: &CertsCommand) -> Result<()> {
    match command {
        CertsCommand::Status(args) => status(args),
        CertsCommand::Rotate(api) => rotate(api),
    }
}

fn status(args: &CertsStatusArgs) -> Result<()> {
    let reply = call(&args.api, "GET", "/v1/certs", None)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reply)?);
    } else {
        let status: CertStatus =
            serde_json::from_value(reply).context("reading the certificate status")?;
        print!("{}", describe(&status));
    }
    Ok(())
}

fn rotate(api: &ApiArgs) -> Result<()> {
    let reply = call(api, "POST", "/v1/certs/rotate", None)?;
    let rotated: Rotated = serde_json::from_value(reply).context("reading the renewal")?;
    println!(
        "Renewed node {}'s certificate: serial {} replaces {}.",
        rotated.certificate.node_id, rotated.certificate.serial, rotated.previous_serial
    );
    print!("{}", describe(&rotated.certificate));
    match rotated.tunnel_key {
        TunnelRenewal::Switched => println!("The tunnel uses the new key."),
        TunnelRenewal::Pending => println!(
            "The new tunnel key is not committed yet (no quorum?); the node goes on publishing it and switches once it is."
        ),
        TunnelRenewal::Off => {}
    }
    Ok(())
}

/// The status as lines for people, with a warning when it expires soon.
fn describe(status: &CertStatus) -> String {
    let mut text = format!(
        "node {}\n  serial       {}\n  valid from   {}\n  valid until  {} ({} days left)\n  fingerprint  {}\n  CA           {} (valid until {})\n",
        status.node_id,
        status.serial,
        status.not_before,
        status.not_after,
        status.days_left,
        status.fingerprint,
        status.ca_fingerprint,
        status.ca_not_after,
    );
    if status.expires_soon {
        let when = if status.days_left < 0 {
            "has EXPIRED".to_owned()
        } else {
            format!("expires in {} days", status.days_left)
        };
        text.push_str(&format!(
            "warning: this certificate {when}: renew it with `stockade certs rotate`\n"
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(days_left: i64) -> CertStatus {
        CertStatus {
            node_id: 2,
            serial: "0abc".into(),
            not_before: "2026-01-01T00:00:00Z".into(),
            not_after: "2027-01-01T00:00:00Z".into(),
            days_left,
            expires_soon: days_left < crate::certs::WARN_DAYS,
            fingerprint: "ff".into(),
            ca_fingerprint: "ee".into(),
            ca_not_after: "2036-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn only_a_certificate_near_its_end_gets_a_warning() {
        assert!(!describe(&status(300)).contains("warning"));
        assert!(describe(&status(12)).contains("expires in 12 days"));
        assert!(describe(&status(-1)).contains("EXPIRED"));
    }
}
