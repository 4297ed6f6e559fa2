//! The CLI's side of learning and templates: `stockade baseline propose`,
//! `accept`, `snooze` and `deny`, and `stockade template list|apply`.

use anyhow::{bail, Context as _, Result};
use serde_json::{json, Value};

use crate::admin_client::call;
use crate::cli::{BaselineCommand, LinkArgs, ProposeArgs, TemplateCommand};

/// `stockade baseline …`.
pub fn run(command: &BaselineCommand) -> Result<()> {
    match command {
        BaselineCommand::Propose(args) => propose(args),
        BaselineCommand::Accept(args) => decide(args, "accept"),
        BaselineCommand::Snooze(args) => decide(args, "snooze"),
        BaselineCommand::Deny(args) => decide(args, "deny"),
    }
}

fn proposal(args: &ProposeArgs) -> Result<Value> {
    let path = format!(
        "/v1/baseline/proposal?zone={}&include_snoozed={}",
        args.zone, args.include_snoozed
    );
    call(&args.api, "POST", &path, None)
}

/// Every proposed link, in the order `propose` numbers them.
fn links(proposal: &Value) -> Vec<Value> {
    proposal["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|rule| rule["links"].as_array().cloned().unwrap_or_default())
        .collect()
}

fn propose(args: &ProposeArgs) -> Result<()> {
    let proposal = proposal(args)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&proposal)?);
        return Ok(());
    }
    let mut number = 0;
    for rule in proposal["rules"].as_array().into_iter().flatten() {
        println!(
            "rule: {} -> {} {} ports {}",
            name(&rule["from"]),
            target(&rule["to"]),
            rule["protocol"].as_str().unwrap_or("?"),
            rule["ports"],
        );
        for link in rule["links"].as_array().into_iter().flatten() {
            number += 1;
            println!(
                "  [{number}] {} -> {} {}/{}  {} connections{}",
                name(&link["key"]["from"]),
                target(&link["key"]["to"]),
                link["key"]["protocol"].as_str().unwrap_or("?"),
                link["key"]["port"],
                link["connections"],
                if link["snoozed"] == true {
                    " (snoozed)"
                } else {
                    ""
                },
            );
        }
    }
    if number == 0 {
        println!(
            "nothing to propose: the policy covers what zone {} did",
            args.zone
        );
    }
    for entry in proposal["diff"]["entries"].as_array().into_iter().flatten() {
        if let Some(after) = entry["change"]["added"]["after"].as_str() {
            println!(
                "+ {} {}: {after}",
                text(&entry["section"]),
                text(&entry["key"])
            );
        }
    }
    Ok(())
}

fn decide(args: &LinkArgs, decision: &str) -> Result<()> {
    let proposal = proposal(&ProposeArgs {
        zone: args.zone.clone(),
        include_snoozed: true,
        json: false,
        api: args.api.clone(),
    })?;
    let all = links(&proposal);
    let chosen: Vec<Value> = if args.all {
        all.iter().map(|l| l["key"].clone()).collect()
    } else {
        args.links
            .iter()
            .map(|&n| {
                n.checked_sub(1)
                    .and_then(|i| all.get(i))
                    .map(|l| l["key"].clone())
                    .with_context(|| format!("no link [{n}]: the proposal has {}", all.len()))
            })
            .collect::<Result<_>>()?
    };
    if chosen.is_empty() {
        bail!("zone {} has no proposed link", args.zone);
    }
    let reply = call(
        &args.api,
        "POST",
        "/v1/baseline/decisions",
        Some(json!({ "links": chosen, "decision": decision })),
    )?;
    println!(
        "{decision}: {} links, policy version {}",
        chosen.len(),
        reply["index"]
    );
    Ok(())
}

/// `stockade template …`.
pub fn template(command: &TemplateCommand) -> Result<()> {
    match command {
        TemplateCommand::List(api) => {
            for template in call(api, "GET", "/v1/templates", None)?
                .as_array()
                .into_iter()
                .flatten()
            {
                println!(
                    "{:<12} {}",
                    text(&template["name"]),
                    text(&template["description"])
                );
            }
            Ok(())
        }
        TemplateCommand::Apply(args) => {
            let body = json!({ "clients": peer(&args.clients)?, "server": peer(&args.server)? });
            let reply = call(
                &args.api,
                "POST",
                &format!("/v1/templates/{}", args.name),
                Some(body),
            )?;
            println!("applied {}: policy version {}", args.name, reply["index"]);
            Ok(())
        }
    }
}

/// A rule end from the command line: an address block, or
/// `zone[/app[/service]]`.
fn peer(text: &str) -> Result<Value> {
    if text.contains(':') || text.chars().next().is_some_and(|c| c.is_ascii_digit()) {
        return Ok(json!({ "cidr": text }));
    }
    let parts: Vec<&str> = text.split('/').collect();
    match parts[..] {
        [zone] => Ok(json!({ "zone": zone })),
        [zone, app] => Ok(json!({ "zone": zone, "app": app })),
        [zone, app, service] => Ok(json!({ "zone": zone, "app": app, "service": service })),
        _ => bail!("`{text}` is neither zone[/app[/service]] nor an address block"),
    }
}

/// `zone/app/service` of an identity name in an API reply.
pub(crate) fn name(identity: &Value) -> String {
    format!(
        "{}/{}/{}",
        text(&identity["zone"]),
        text(&identity["app"]),
        text(&identity["service"])
    )
}

/// An edge's or rule's far end in an API reply: an identity or an address.
pub(crate) fn target(to: &Value) -> String {
    match (to.get("identity"), to.get("address")) {
        (Some(identity), _) => name(identity),
        (None, Some(address)) => text(address),
        _ => to.to_string(),
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_are_app_selectors_or_address_blocks() {
        assert_eq!(peer("prod").expect("zone"), json!({"zone": "prod"}));
        assert_eq!(
            peer("prod/db/main").expect("service"),
            json!({"zone": "prod", "app": "db", "service": "main"})
        );
        assert_eq!(
            peer("192.0.2.53/32").expect("cidr"),
            json!({"cidr": "192.0.2.53/32"})
        );
        assert_eq!(
            peer("2001:db8::/64").expect("cidr"),
            json!({"cidr": "2001:db8::/64"})
        );
        assert!(peer("a/b/c/d").is_err());
    }
}
