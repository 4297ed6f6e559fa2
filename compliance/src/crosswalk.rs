//! The controls the report evaluates: the NIST Cybersecurity Framework
//! subcategories of the HIPAA Security Rule crosswalk (NIST, 2014) that a
//! distributed firewall answers, each with the HIPAA sections it maps to.

/// One NIST CSF subcategory and its HIPAA sections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Control {
    /// The subcategory's id, e.g. `PR.AC-5`.
    pub id: &'static str,
    /// Function and category, e.g. `Protect / Access Control`.
    pub category: &'static str,
    /// What the subcategory asks for, in short.
    pub outcome: &'static str,
    /// The HIPAA Security Rule sections it maps to.
    pub hipaa: &'static [&'static str],
    /// How Stockade answers it.
    pub answer: &'static str,
}

/// Every control, in the crosswalk's order.
pub const CONTROLS: &[Control] = &[
    Control {
        id: "ID.AM-2",
        category: "Identify / Asset Management",
        outcome: "Software platforms and applications are inventoried.",
        hipaa: &["164.308(a)(1)(ii)(A)", "164.308(a)(7)(ii)(E)"],
        answer: "Every node reports the processes it runs, with the identity (zone/app/service) each has or the fact that its binary is unknown or modified.",
    },
    Control {
        id: "ID.AM-3",
        category: "Identify / Asset Management",
        outcome: "Communication and data flows are mapped.",
        hipaa: &["164.308(a)(1)(ii)(A)", "164.308(a)(3)(ii)(A)", "164.308(a)(8)", "164.310(d)"],
        answer: "Every node logs each flow its kernel decides; the topology is drawn from them at zone, app, service and process level.",
    },
    Control {
        id: "PR.AC-5",
        category: "Protect / Access Control",
        outcome: "Network integrity is protected, with network segregation where appropriate.",
        hipaa: &["164.312(a)(1)", "164.312(b)", "164.312(e)"],
        answer: "Zones in enforce mode refuse, in the kernel of every node, each connection no rule allows.",
    },
    Control {
        id: "PR.DS-2",
        category: "Protect / Data Security",
        outcome: "Data in transit is protected.",
        hipaa: &["164.312(e)(1)"],
        answer: "Rules marked encrypt carry their flows between nodes through a Noise tunnel keyed by the nodes' certificates.",
    },
    Control {
        id: "PR.DS-5",
        category: "Protect / Data Security",
        outcome: "Protections against data leaks are implemented.",
        hipaa: &["164.308(a)(1)(ii)(D)", "164.310(b)", "164.312(a)(1)", "164.312(e)(1)"],
        answer: "Egress is allow-listed like any other flow: in an enforcing zone a workload reaches only the applications and addresses a rule names.",
    },
    Control {
        id: "PR.DS-6",
        category: "Protect / Data Security",
        outcome: "Integrity checking verifies software, firmware and information.",
        hipaa: &["164.312(b)", "164.312(c)(1)", "164.312(c)(2)", "164.312(e)(2)(i)"],
        answer: "Binaries are registered by SHA-256; a process whose binary changed loses its identity and cannot communicate in an enforcing zone.",
    },
    Control {
        id: "PR.DS-7",
        category: "Protect / Data Security",
        outcome: "Development and testing environments are separate from production.",
        hipaa: &["164.308(a)(4)", "164.502"],
        answer: "Zones are isolated from one another unless a rule names both.",
    },
    Control {
        id: "PR.IP-1",
        category: "Protect / Information Protection",
        outcome: "A baseline configuration is created and maintained.",
        hipaa: &["164.308(a)(7)(i)", "164.308(a)(7)(ii)(A)", "164.308(a)(8)"],
        answer: "Learning zones record what their applications do; the proposal turns it into the narrowest rules, which people accept, snooze or deny.",
    },
    Control {
        id: "PR.IP-2",
        category: "Protect / Information Protection",
        outcome: "A system development life cycle manages systems.",
        hipaa: &["164.308(a)(1)(i)"],
        answer: "CI registers each release's binaries by fingerprint; only registered binaries get their application's identity in production.",
    },
    Control {
        id: "PR.IP-4",
        category: "Protect / Information Protection",
        outcome: "Backups are conducted, maintained and tested.",
        hipaa: &["164.308(a)(7)(ii)(A)", "164.308(a)(7)(ii)(B)"],
        answer: "The leader writes signed, checksummed backups of the whole state on a schedule; a restore goes to every node at once.",
    },
    Control {
        id: "PR.IP-8",
        category: "Protect / Information Protection",
        outcome: "The effectiveness of protection is shared with appropriate parties.",
        hipaa: &["164.308(a)(6)(ii)"],
        answer: "Alerts go to Slack and to SIEMs (syslog/CEF, JSON webhooks) from the elected leader, at least once.",
    },
    Control {
        id: "PR.PT-1",
        category: "Protect / Protective Technology",
        outcome: "Audit and log records are determined, kept and reviewed.",
        hipaa: &["164.308(a)(1)(ii)(D)", "164.308(a)(5)(ii)(C)", "164.310(a)(2)(iv)", "164.310(d)(2)(iii)", "164.312(b)"],
        answer: "Every change through the API is recorded through Raft with its token, address and policy version; flow logs are kept on every node.",
    },
    Control {
        id: "PR.PT-3",
        category: "Protect / Protective Technology",
        outcome: "Access follows the principle of least functionality.",
        hipaa: &["164.312(a)(1)", "164.312(a)(2)(iv)"],
        answer: "Rules name applications and ports; proposals are the narrowest rules that cover what was learned.",
    },
    Control {
        id: "PR.PT-4",
        category: "Protect / Protective Technology",
        outcome: "Communications and control networks are protected.",
        hipaa: &["164.312(a)(1)", "164.312(b)", "164.312(e)"],
        answer: "Each process has an identity and an allow-list; nodes talk over mutual TLS with the cluster's CA; flows can be encrypted.",
    },
    Control {
        id: "DE.AE-1",
        category: "Detect / Anomalies and Events",
        outcome: "A baseline of network operations and expected flows is established and managed.",
        hipaa: &["164.312(b)"],
        answer: "The learned baseline is kept; a flow outside it in an alerting or enforcing zone raises a baseline-deviation alert.",
    },
    Control {
        id: "DE.AE-3",
        category: "Detect / Anomalies and Events",
        outcome: "Event data are aggregated and correlated from multiple sources.",
        hipaa: &["164.308(a)(5)(ii)(B)", "164.308(a)(8)", "164.312(b)"],
        answer: "Alerts from every node are replicated through Raft into one log; flow queries gather every node's records.",
    },
    Control {
        id: "DE.AE-5",
        category: "Detect / Anomalies and Events",
        outcome: "Incident alert thresholds are established.",
        hipaa: &["164.308(a)(6)(i)"],
        answer: "Each sink has a minimum severity and a rate limit; alerts are classed by how often they occur.",
    },
    Control {
        id: "DE.CM-1",
        category: "Detect / Security Continuous Monitoring",
        outcome: "The network is monitored to detect potential cybersecurity events.",
        hipaa: &["164.312(b)"],
        answer: "Every node's kernel checks each connection at egress and ingress and records the verdict.",
    },
    Control {
        id: "DE.CM-4",
        category: "Detect / Security Continuous Monitoring",
        outcome: "Malicious code is detected.",
        hipaa: &["164.308(a)(5)(ii)(B)"],
        answer: "A process whose binary is unknown or modified is reported, alerted on, and cut off in enforcing zones.",
    },
    Control {
        id: "DE.CM-6",
        category: "Detect / Security Continuous Monitoring",
        outcome: "External service provider activity is monitored.",
        hipaa: &["164.308(a)(1)(ii)(D)"],
        answer: "Connections from outside the cluster are logged at the receiving node, refused unless a rule allows their address, and alerted on.",
    },
    Control {
        id: "DE.DP-4",
        category: "Detect / Detection Processes",
        outcome: "Event detection information is communicated.",
        hipaa: &["164.308(a)(6)(ii)", "164.314(a)(2)(i)(C)", "164.314(a)(2)(iii)"],
        answer: "Alerts reach each configured sink with a delivery cursor; a failing sink is itself alerted on.",
    },
];
