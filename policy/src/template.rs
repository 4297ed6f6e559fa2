//! Templates: the allow rule a common server needs, ready to apply.
//!
//! Most policies start with the same few services — name resolution, time,
//! a database, a cache, a web server — whose ports everyone looks up again.
//! A template knows them; the operator says only who the clients and the
//! server are. Applying a template yields ordinary [`Command::UpsertRule`]s
//! (owner `template:<name>`), reviewed and committed like any other change.

use serde::{Deserialize, Serialize};

use crate::command::Command;
use crate::error::ValidationError;
use crate::state::ClusterState;
use crate::{Action, Peer, PortRange, Protocol, RuleSpec};

/// A pre-canned policy for one kind of server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Template {
    /// What names it, e.g. `postgresql`.
    pub name: &'static str,
    /// What it allows, for people choosing one.
    pub description: &'static str,
    /// The transport protocol of its ports.
    pub protocol: Protocol,
    /// The server's ports, ascending.
    pub ports: &'static [u16],
}

/// Who a template's rule connects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TemplateParams {
    /// The applications that connect to the server.
    pub clients: Peer,
    /// The server: applications of the cluster, or addresses outside it
    /// (an external DNS resolver, a managed database).
    pub server: Peer,
}

const TEMPLATES: &[Template] = &[
    Template {
        name: "dns",
        description: "DNS resolution: UDP and TCP port 53",
        protocol: Protocol::Any,
        ports: &[53],
    },
    Template {
        name: "ntp",
        description: "Time synchronisation (NTP): UDP port 123",
        protocol: Protocol::Udp,
        ports: &[123],
    },
    Template {
        name: "postgresql",
        description: "PostgreSQL clients: TCP port 5432",
        protocol: Protocol::Tcp,
        ports: &[5432],
    },
    Template {
        name: "redis",
        description: "Redis clients: TCP port 6379",
        protocol: Protocol::Tcp,
        ports: &[6379],
    },
    Template {
        name: "http",
        description: "Web server (nginx or any HTTP server): TCP ports 80 and 443",
        protocol: Protocol::Tcp,
        ports: &[80, 443],
    },
];

/// Every template, by name.
pub fn templates() -> &'static [Template] {
    TEMPLATES
}

/// The commands that give `params` what template `name` allows: one allow
/// rule, or none when an identical rule exists already (applying twice
/// changes nothing). Errors name the field at fault: `name`, or
/// `clients.…` / `server.…`.
pub fn apply_template(
    state: &ClusterState,
    name: &str,
    params: &TemplateParams,
) -> Result<Vec<Command>, ValidationError> {
    let Some(template) = TEMPLATES.iter().find(|t| t.name == name) else {
        let known: Vec<&str> = TEMPLATES.iter().map(|t| t.name).collect();
        return Err(ValidationError::new(
            "name",
            format!("unknown template `{name}`; known: {}", known.join(", ")),
        ));
    };
    let spec = RuleSpec {
        from: params.clients.clone(),
        to: params.server.clone(),
        protocol: template.protocol,
        ports: template
            .ports
            .iter()
            .copied()
            .map(PortRange::single)
            .collect(),
        action: Action::Allow,
        encrypt: false,
        owner: format!("template:{}", template.name),
        description: template.description.to_owned(),
    };
    if state.rules.values().any(|r| r.spec == spec) {
        return Ok(Vec::new());
    }
    let command = Command::UpsertRule { id: None, spec };
    command.validate(state).map_err(in_params)?;
    Ok(vec![command])
}

/// A rule error seen as an error of the template's parameters: the rule's
/// `from` is the clients, its `to` the server.
fn in_params(error: ValidationError) -> ValidationError {
    let renamed = [("from", "clients"), ("to", "server")]
        .into_iter()
        .find_map(|(side, param)| {
            let rest = error.field.strip_prefix(side)?;
            (rest.is_empty() || rest.starts_with('.')).then(|| format!("{param}{rest}"))
        });
    match renamed {
        Some(field) => ValidationError::new(field, error.reason),
        None => error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{app, sample};
    use crate::AppSelector;

    fn params(server: Peer) -> TemplateParams {
        TemplateParams {
            clients: app("prod", "web"),
            server,
        }
    }

    #[test]
    fn every_template_has_a_unique_name_and_ports() {
        for (i, t) in templates().iter().enumerate() {
            assert!(!t.ports.is_empty(), "{}", t.name);
            assert!(t.ports.windows(2).all(|w| w[0] < w[1]), "{}", t.name);
            assert!(templates()[..i].iter().all(|o| o.name != t.name));
        }
    }

    #[test]
    fn a_template_becomes_one_allow_rule_with_its_ports() {
        let mut state = sample();
        let commands = apply_template(&state, "http", &params(app("prod", "db"))).expect("valid");
        let [Command::UpsertRule { id: None, spec }] = commands.as_slice() else {
            panic!("one new rule: {commands:?}")
        };
        assert_eq!(spec.owner, "template:http");
        assert_eq!(spec.action, Action::Allow);
        assert_eq!(spec.protocol, Protocol::Tcp);
        assert_eq!(spec.ports, [PortRange::single(80), PortRange::single(443)]);
        Command::batch(commands).apply(&mut state).expect("applies");
        // Applying it again finds the rule there and adds nothing.
        let again = apply_template(&state, "http", &params(app("prod", "db"))).expect("valid");
        assert!(again.is_empty(), "{again:?}");
    }

    #[test]
    fn dns_toward_an_external_resolver_covers_udp_and_tcp() {
        let resolver = Peer::Cidr("192.0.2.53/32".parse().expect("net"));
        let commands = apply_template(&sample(), "dns", &params(resolver)).expect("valid");
        let [Command::UpsertRule { spec, .. }] = commands.as_slice() else {
            panic!("one new rule: {commands:?}")
        };
        assert_eq!(
            (spec.protocol, spec.ports.as_slice()),
            (Protocol::Any, &[PortRange::single(53)][..])
        );
    }

    #[test]
    fn errors_name_the_parameter_at_fault() {
        let state = sample();
        let err = apply_template(&state, "mysql", &params(app("prod", "db"))).expect_err("unknown");
        assert_eq!(err.field, "name");
        assert!(err.reason.contains("postgresql"), "{err}");
        let nowhere = Peer::App(AppSelector {
            zone: "nowhere".into(),
            app: None,
            service: None,
        });
        let err = apply_template(&state, "redis", &params(nowhere.clone())).expect_err("zone");
        assert_eq!(err.field, "server.zone");
        let clients_nowhere = TemplateParams {
            clients: nowhere,
            server: app("prod", "db"),
        };
        let err = apply_template(&state, "redis", &clients_nowhere).expect_err("zone");
        assert_eq!(err.field, "clients.zone");
    }
}
