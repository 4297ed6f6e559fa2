//! Stockade's HIPAA / NIST CSF compliance report.
//!
//! The HIPAA Security Rule crosswalk to the NIST Cybersecurity Framework
//! lists the subcategories a distributed firewall answers ([`CONTROLS`]).
//! [`HipaaReport::make`] judges each one — met, partly met or not met —
//! from [`Evidence`] of a live cluster (its applied state, what every node
//! says about its dataplane, and counts from every node's flow log), lists
//! the facts behind each judgement, and signs the result with the
//! cluster's key so that a report can be checked later
//! ([`HipaaReport::verify`]). It renders as JSON (serde), as one HTML page
//! ([`HipaaReport::to_html`]) and as PDF ([`HipaaReport::to_pdf`]).
//!
//! Nothing here performs I/O or reads a clock: the node gathers the
//! evidence, and the time is part of it.

mod crosswalk;
mod evaluate;
mod evidence;
mod html;
mod pdf;
mod report;

pub use crosswalk::{Control, CONTROLS};
pub use evaluate::BACKUP_MAX_AGE_MS;
pub use evidence::{Evidence, FlowEvidence, FlowTally, MemberAnswer, MemberEvidence};
pub use pdf::PdfError;
pub use report::{
    ControlResult, Finding, HipaaReport, ReportError, Status, Summary, REPORT_FORMAT,
};

#[cfg(test)]
mod tests;
