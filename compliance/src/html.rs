//! The report as one self-contained HTML page: no script, no outside
//! resource, printable; the report's JSON is embedded so that the page
//! itself can be verified later.

use askama::Template;

use crate::report::{HipaaReport, ReportError};

/// The `id` of the element holding the embedded JSON.
const EMBEDDED_ID: &str = "stockade-report";

#[derive(Template)]
#[template(path = "hipaa.html")]
struct Page<'a> {
    r: &'a HipaaReport,
    window: String,
    /// The report's JSON, safe inside a `<script>` element.
    json: String,
}

impl HipaaReport {
    /// The report as an HTML page.
    pub fn to_html(&self) -> String {
        let json = serde_json::to_string(self)
            .unwrap_or_else(|e| unreachable!("a report is always valid JSON: {e}"))
            // Nothing in the data may end the element (`</script>`) or open
            // a comment: `<` only occurs inside JSON strings, where
            // `\u003c` is the same character.
            .replace('<', "\\u003c");
        let page = Page {
            r: self,
            window: humantime::format_duration(std::time::Duration::from_millis(
                self.flow_window_ms,
            ))
            .to_string(),
            json,
        };
        page.render()
            .unwrap_or_else(|e| unreachable!("the report template renders any report: {e}"))
    }

    /// Reads a report back from its JSON, or from an HTML page made by
    /// [`HipaaReport::to_html`].
    pub fn parse(text: &str) -> Result<Self, ReportError> {
        let json = match text.trim_start().starts_with('{') {
            true => text,
            false => {
                let open = format!("<script type=\"application/json\" id=\"{EMBEDDED_ID}\">");
                let start = text
                    .find(&open)
                    .ok_or_else(|| ReportError::NotAReport("no embedded report data".into()))?
                    + open.len();
                let end = text[start..]
                    .find("</script>")
                    .ok_or_else(|| ReportError::NotAReport("the embedded data is cut".into()))?;
                &text[start..start + end]
            }
        };
        serde_json::from_str(json).map_err(|e| ReportError::NotAReport(e.to_string()))
    }
}
