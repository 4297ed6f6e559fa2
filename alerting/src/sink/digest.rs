//! What a digest says about a burst of alerts, whatever format carries it:
//! counts by kind and by app, the time and sequence span, and the ids.

use std::collections::BTreeMap;

use stockade_policy::{Alert, AlertKind, Severity};

/// What an app count calls alerts about no app (nodes, sinks).
const NO_APP: &str = "(no app)";

/// How many alerts of one kind a digest stands for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    /// Alert records.
    pub alerts: usize,
    /// Occurrences they stand for (the sum of their counts).
    pub occurrences: u64,
}

/// The facts of a burst of alerts.
#[derive(Debug)]
pub(crate) struct Digest<'a> {
    /// The alerts, in log order.
    pub alerts: &'a [Alert],
    /// Records and occurrences per kind.
    pub by_kind: BTreeMap<AlertKind, Tally>,
    /// Records per app (`zone/app`); an alert between two apps counts for
    /// both.
    pub by_app: BTreeMap<String, usize>,
    /// The lowest and highest sequence number.
    pub seqs: (u64, u64),
    /// When the first occurrence happened and the last (ms since the epoch).
    pub seen_ms: (u64, u64),
    /// All occurrences together.
    pub occurrences: u64,
    /// The most serious severity among them.
    pub severity: Severity,
}

/// Alert ids written within a size budget.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct IdList {
    /// The ids, separated, and when not all fit, what was left out.
    pub text: String,
    /// How many ids `text` names.
    pub listed: usize,
}

impl<'a> Digest<'a> {
    /// The facts of `alerts`.
    pub(crate) fn new(alerts: &'a [Alert]) -> Digest<'a> {
        let mut by_kind: BTreeMap<AlertKind, Tally> = BTreeMap::new();
        let mut by_app: BTreeMap<String, usize> = BTreeMap::new();
        for alert in alerts {
            let tally = by_kind.entry(alert.kind).or_default();
            tally.alerts += 1;
            tally.occurrences = tally.occurrences.saturating_add(alert.count);
            let apps = alert.apps();
            if apps.is_empty() {
                *by_app.entry(NO_APP.to_owned()).or_default() += 1;
            }
            for app in apps {
                *by_app.entry(app).or_default() += 1;
            }
        }
        let seq = alerts.iter().map(|a| a.seq);
        let seqs = (seq.clone().min().unwrap_or(0), seq.max().unwrap_or(0));
        let first = alerts.iter().map(|a| a.first_seen_ms).min().unwrap_or(0);
        let last = alerts.iter().map(|a| a.last_seen_ms).max().unwrap_or(0);
        Digest {
            alerts,
            by_kind,
            by_app,
            seqs,
            seen_ms: (first, last),
            occurrences: alerts.iter().fold(0u64, |n, a| n.saturating_add(a.count)),
            severity: alerts
                .iter()
                .map(|a| a.severity)
                .max()
                .unwrap_or(Severity::Info),
        }
    }

    /// A title: `Alert digest: 250 alerts (rate limit reached)`.
    pub(crate) fn title(&self) -> String {
        format!(
            "Alert digest: {} alert{} (rate limit reached)",
            self.alerts.len(),
            plural(self.alerts.len())
        )
    }

    /// One line per kind: `Flow blocked by policy: 200 alerts, 1234
    /// occurrences`.
    pub(crate) fn kind_lines(&self) -> Vec<String> {
        self.by_kind
            .iter()
            .map(|(kind, t)| {
                format!(
                    "{}: {} alert{}, {} occurrence{}",
                    kind.title(),
                    t.alerts,
                    plural(t.alerts),
                    t.occurrences,
                    plural(t.occurrences)
                )
            })
            .collect()
    }

    /// The apps, most alerts first: `(app, alerts)`.
    pub(crate) fn apps_by_count(&self) -> Vec<(&str, usize)> {
        let mut apps: Vec<(&str, usize)> =
            self.by_app.iter().map(|(a, n)| (a.as_str(), *n)).collect();
        apps.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        apps
    }

    /// A one-line account: `250 alerts, 1234 occurrences, seq 51..300;
    /// policy_violation 200, unknown_binary 50; apps prod/web 180, …`.
    pub(crate) fn summary(&self) -> String {
        let kinds: Vec<String> = self
            .by_kind
            .iter()
            .map(|(kind, t)| format!("{kind} {}", t.alerts))
            .collect();
        let apps: Vec<String> = self
            .apps_by_count()
            .iter()
            .map(|(app, n)| format!("{app} {n}"))
            .collect();
        format!(
            "{} alert{}, {} occurrence{}, seq {}..{}; {}; apps {}",
            self.alerts.len(),
            plural(self.alerts.len()),
            self.occurrences,
            plural(self.occurrences),
            self.seqs.0,
            self.seqs.1,
            kinds.join(", "),
            apps.join(", ")
        )
    }

    /// The alert ids joined by `sep`, in at most `budget` bytes. When not all
    /// fit, as many as fit are listed and the text ends with
    /// `… and N more: seq A..B`, the sequence span of the ones left out.
    pub(crate) fn ids(&self, budget: usize, sep: &str) -> IdList {
        let all: Vec<&str> = self.alerts.iter().map(|a| a.id.0.as_str()).collect();
        let full = all.join(sep);
        if full.len() <= budget {
            return IdList {
                text: full,
                listed: all.len(),
            };
        }
        // Room for the longest tail this burst could need, so that whatever
        // is listed, the tail fits too.
        let widest = self.tail(all.len(), self.seqs.1, self.seqs.1);
        let room = budget.saturating_sub(widest.len());
        let mut text = String::new();
        let mut listed = 0;
        for id in &all {
            let extra = if listed == 0 { 0 } else { sep.len() } + id.len();
            if text.len() + extra > room {
                break;
            }
            if listed > 0 {
                text.push_str(sep);
            }
            text.push_str(id);
            listed += 1;
        }
        let rest = &self.alerts[listed..];
        let low = rest.iter().map(|a| a.seq).min().unwrap_or(self.seqs.0);
        let high = rest.iter().map(|a| a.seq).max().unwrap_or(self.seqs.1);
        text.push_str(&self.tail(rest.len(), low, high));
        IdList { text, listed }
    }

    /// What stands for the ids that did not fit.
    fn tail(&self, more: usize, low: u64, high: u64) -> String {
        format!("… and {more} more: seq {low}..{high}")
    }
}

/// `s` for anything but one.
fn plural(n: impl TryInto<u64>) -> &'static str {
    match n.try_into() {
        Ok(1) => "",
        _ => "s",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::fixtures::node_alert;

    #[test]
    fn counts_and_spans() {
        let alerts: Vec<Alert> = (5..10).map(node_alert).collect();
        let d = Digest::new(&alerts);
        assert_eq!(d.seqs, (5, 9));
        assert_eq!(d.seen_ms, (1_005, 2_009));
        assert_eq!(d.occurrences, 10);
        assert_eq!(d.by_kind[&AlertKind::NodeDown].alerts, 5);
        assert_eq!(d.by_app[NO_APP], 5);
        assert_eq!(d.kind_lines(), ["Node down: 5 alerts, 10 occurrences"]);
        assert!(d
            .summary()
            .starts_with("5 alerts, 10 occurrences, seq 5..9; node_down 5"));
    }

    #[test]
    fn ids_that_do_not_fit_become_a_seq_range() {
        let alerts: Vec<Alert> = (1..=100).map(node_alert).collect();
        let d = Digest::new(&alerts);
        let all = d.ids(10_000, ",");
        assert_eq!(all.listed, 100);
        assert!(!all.text.contains("more"));
        let some = d.ids(200, ",");
        assert!(some.text.len() <= 200, "{}", some.text);
        assert!(some.listed > 0 && some.listed < 100);
        let tail = format!(
            "… and {} more: seq {}..100",
            100 - some.listed,
            some.listed + 1
        );
        assert!(some.text.ends_with(&tail), "{}", some.text);
        let none = d.ids(10, ",");
        assert_eq!(none.listed, 0);
        assert_eq!(none.text, "… and 100 more: seq 1..100");
    }
}
