//! The report: every control judged, dated, naming the cluster and its
//! policy version, with a digest of its contents and the cluster's HMAC of
//! that digest, so it can be checked later that the report is unchanged
//! and was made by this cluster.

use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use stockade_policy::{ClusterKey, NodeId, Sha256};

use crate::crosswalk::CONTROLS;
use crate::evaluate::evaluate;
use crate::evidence::Evidence;

/// The format the JSON report declares.
pub const REPORT_FORMAT: &str = "stockade-hipaa-report 1";

/// How far a control is met.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Everything the control asks of Stockade is in place.
    Met,
    /// Some of it is.
    PartlyMet,
    /// None of it is.
    NotMet,
}

impl Status {
    /// Its name in JSON: `met`, `partly_met`, `not_met`.
    pub fn key(self) -> &'static str {
        match self {
            Status::Met => "met",
            Status::PartlyMet => "partly_met",
            Status::NotMet => "not_met",
        }
    }

    /// How people read it.
    pub fn label(self) -> &'static str {
        match self {
            Status::Met => "met",
            Status::PartlyMet => "partly met",
            Status::NotMet => "not met",
        }
    }
}

/// The judgement of one control: its status, the facts behind it and what
/// would close the gap.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// How far it is met.
    pub status: Status,
    /// The facts, each one sentence an auditor can check.
    pub evidence: Vec<String>,
    /// What to do to meet it (or to keep it met).
    pub gaps: Vec<String>,
}

impl Finding {
    /// An empty finding, not met until judged.
    pub(crate) fn new() -> Self {
        Finding {
            status: Status::NotMet,
            evidence: Vec::new(),
            gaps: Vec::new(),
        }
    }

    /// Adds a fact.
    pub(crate) fn fact(&mut self, fact: impl Into<String>) {
        self.evidence.push(fact.into());
    }

    /// Adds what is missing.
    pub(crate) fn gap(&mut self, gap: impl Into<String>) {
        self.gaps.push(gap.into());
    }

    /// Adds advice that holds even when the control is met.
    pub(crate) fn gap_always(&mut self, advice: impl Into<String>) {
        self.gaps.push(advice.into());
    }

    /// Met when `met`, else partly met when `partly`, else not met.
    pub(crate) fn judge(mut self, met: bool, partly: bool) -> Self {
        self.status = if met {
            Status::Met
        } else if partly {
            Status::PartlyMet
        } else {
            Status::NotMet
        };
        self
    }
}

/// One control of the crosswalk and its judgement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlResult {
    /// The NIST CSF subcategory, e.g. `PR.AC-5`.
    pub id: String,
    /// Its function and category.
    pub category: String,
    /// What it asks for.
    pub outcome: String,
    /// The HIPAA Security Rule sections it maps to.
    pub hipaa: Vec<String>,
    /// How Stockade answers it.
    pub answer: String,
    /// The judgement.
    #[serde(flatten)]
    pub finding: Finding,
}

/// How many controls are met, partly met and not met.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Met.
    pub met: usize,
    /// Partly met.
    pub partly_met: usize,
    /// Not met.
    pub not_met: usize,
}

/// The whole report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HipaaReport {
    /// [`REPORT_FORMAT`].
    pub format: String,
    /// The cluster's name (`settings.cluster_name`), or its CA fingerprint's
    /// first 16 digits when it has none.
    pub cluster: String,
    /// Lowercase hex SHA-256 of the cluster's CA certificate.
    pub ca_fingerprint: String,
    /// When it was made (ms since the Unix epoch).
    pub generated_at_ms: u64,
    /// The same, as RFC 3339 UTC.
    pub generated_at: String,
    /// The node that made it.
    pub generated_by: NodeId,
    /// The policy version: the log index of the last change to the policy
    /// document (the applied index when the history holds none).
    pub policy_version: u64,
    /// The log index of the state it was evaluated from.
    pub applied_index: u64,
    /// The flow window it read (ms).
    pub flow_window_ms: u64,
    /// The member count.
    pub nodes: usize,
    /// The controls' totals.
    pub summary: Summary,
    /// Every control, in the crosswalk's order.
    pub controls: Vec<ControlResult>,
    /// Lowercase hex SHA-256 of the report's JSON without `digest` and
    /// `signature` (see [`HipaaReport::contents`]).
    pub digest: String,
    /// Lowercase hex HMAC-SHA256 of `digest` under the cluster's report key:
    /// only the cluster can make it, and only the cluster can check it.
    pub signature: String,
}

/// Why a report cannot be made or checked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// The cluster has no CA to sign with.
    #[error("this cluster cannot sign a report: its certificate authority is {0}")]
    NoKey(String),
    /// The text is not a report.
    #[error("not a Stockade HIPAA report: {0}")]
    NotAReport(String),
    /// The contents do not match the digest.
    #[error("the report was changed: its contents no longer match its digest")]
    Altered,
    /// The digest is not signed by this cluster.
    #[error("the report was not made by this cluster (CA {report}, this cluster's is {cluster}), or its signature was changed")]
    NotSigned {
        /// The CA fingerprint the report names.
        report: String,
        /// This cluster's.
        cluster: String,
    },
}

impl HipaaReport {
    /// Evaluates every control from `evidence` and signs the result.
    pub fn make(evidence: &Evidence<'_>) -> Result<Self, ReportError> {
        let state = evidence.state;
        let key = ClusterKey::of(state, "report").map_err(|e| ReportError::NoKey(e.to_string()))?;
        let controls: Vec<ControlResult> = CONTROLS
            .iter()
            .map(|c| ControlResult {
                id: c.id.into(),
                category: c.category.into(),
                outcome: c.outcome.into(),
                hipaa: c.hipaa.iter().map(|s| (*s).to_owned()).collect(),
                answer: c.answer.into(),
                finding: evaluate(c.id, evidence),
            })
            .collect();
        let mut summary = Summary::default();
        for c in &controls {
            match c.finding.status {
                Status::Met => summary.met += 1,
                Status::PartlyMet => summary.partly_met += 1,
                Status::NotMet => summary.not_met += 1,
            }
        }
        let fingerprint = key.fingerprint().to_owned();
        let cluster = match state.settings.cluster_name.as_str() {
            "" => format!("cluster {}", &fingerprint[..16]),
            name => name.to_owned(),
        };
        let mut report = HipaaReport {
            format: REPORT_FORMAT.into(),
            cluster,
            ca_fingerprint: fingerprint,
            generated_at_ms: evidence.now_ms,
            generated_at: humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(evidence.now_ms),
            )
            .to_string(),
            generated_by: evidence.node,
            policy_version: state
                .history
                .versions
                .back()
                .map_or(evidence.applied_index, |v| v.version),
            applied_index: evidence.applied_index,
            flow_window_ms: evidence.flows.window_ms,
            nodes: evidence.members.len(),
            summary,
            controls,
            digest: String::new(),
            signature: String::new(),
        };
        let digest = report.contents_digest();
        report.signature = key.sign(digest.to_string().as_bytes()).to_string();
        report.digest = digest.to_string();
        Ok(report)
    }

    /// The control `id`, if the report has it.
    pub fn control(&self, id: &str) -> Option<&ControlResult> {
        self.controls.iter().find(|c| c.id == id)
    }

    /// The canonical JSON the digest covers: the report with `digest` and
    /// `signature` empty.
    pub fn contents(&self) -> Vec<u8> {
        let unsigned = HipaaReport {
            digest: String::new(),
            signature: String::new(),
            ..self.clone()
        };
        // Plain data with string keys and no floats: encoding cannot fail.
        serde_json::to_vec(&unsigned)
            .unwrap_or_else(|e| unreachable!("a report is always valid JSON: {e}"))
    }

    fn contents_digest(&self) -> Sha256 {
        Sha256(sha2::Sha256::digest(self.contents()).into())
    }

    /// Checks that the report is unchanged (its digest matches its
    /// contents) and was made by the cluster of `state` (its signature).
    pub fn verify(&self, state: &stockade_policy::ClusterState) -> Result<(), ReportError> {
        if self.format != REPORT_FORMAT {
            return Err(ReportError::NotAReport(format!(
                "format `{}`, expected `{REPORT_FORMAT}`",
                self.format
            )));
        }
        if self.contents_digest().to_string() != self.digest {
            return Err(ReportError::Altered);
        }
        let key = ClusterKey::of(state, "report").map_err(|e| ReportError::NoKey(e.to_string()))?;
        let signature: Option<Sha256> = self.signature.parse().ok();
        match signature {
            Some(mac) if key.verify(self.digest.as_bytes(), &mac) => Ok(()),
            _ => Err(ReportError::NotSigned {
                report: self.ca_fingerprint.clone(),
                cluster: key.fingerprint().to_owned(),
            }),
        }
    }
}
