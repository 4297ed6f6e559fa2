//! Reading Elasticsearch's `_bulk` answer, which is 200 even when some
//! documents were refused: the refusals are items with their own status.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::error::Origin;
use super::SinkError;

/// The part of a bulk answer that says what happened.
#[derive(Deserialize)]
struct Answer {
    errors: bool,
    #[serde(default)]
    items: Vec<BTreeMap<String, Item>>,
}

/// One action's outcome, under its action's name (`create`).
#[derive(Deserialize)]
struct Item {
    #[serde(default, rename = "_id")]
    id: Option<String>,
    status: u16,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

/// HTTP 409: the document exists already. Every document id is its alert's
/// id, so this is a repeat delivery, and the alert is in the index.
const CONFLICT: u16 = 409;

/// `Ok` when every item was created or already existed; otherwise
/// [`SinkError::Rejected`] with the first refused item's status and error.
pub(crate) fn check(answer: &str, origin: &Origin) -> Result<(), SinkError> {
    let answer: Answer = serde_json::from_str(answer)
        .map_err(|e| origin.bad_response(format!("not a bulk answer: {e}")))?;
    if !answer.errors {
        return Ok(());
    }
    let refused: Vec<(&String, &Item)> = answer
        .items
        .iter()
        .flat_map(|item| item.iter())
        .filter(|(_, item)| !(200..300).contains(&item.status) && item.status != CONFLICT)
        .collect();
    let Some((action, first)) = refused.first() else {
        return Ok(());
    };
    let error = first.error.as_ref();
    let field = |name: &str| {
        error
            .and_then(|e| e.get(name))
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_owned()
    };
    Err(origin.rejected(
        first.status,
        &format!(
            "{} of {} bulk items refused; first: {action} {}: {}: {}",
            refused.len(),
            answer.items.len(),
            first.id.as_deref().unwrap_or("?"),
            field("type"),
            field("reason")
        ),
        None,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        Origin::new("es", "https://es:9200/alerts/_bulk".into(), vec![])
    }

    #[test]
    fn conflicts_are_repeats_not_failures() {
        let ok = r#"{"took":3,"errors":false,"items":[{"create":{"_id":"a","status":201}}]}"#;
        assert!(check(ok, &origin()).is_ok());
        let repeat = r#"{"errors":true,"items":[
            {"create":{"_id":"a","status":201}},
            {"create":{"_id":"b","status":409,"error":{"type":"version_conflict_engine_exception"}}}]}"#;
        assert!(check(repeat, &origin()).is_ok());
    }

    #[test]
    fn other_item_errors_are_rejections() {
        let bad = r#"{"errors":true,"items":[
            {"create":{"_id":"a","status":409}},
            {"create":{"_id":"b","status":400,"error":{"type":"mapper_parsing_exception","reason":"bad seq"}}}]}"#;
        match check(bad, &origin()) {
            Err(SinkError::Rejected { status, body, .. }) => {
                assert_eq!(status, 400);
                assert_eq!(
                    body,
                    "1 of 2 bulk items refused; first: create b: mapper_parsing_exception: bad seq"
                );
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
        assert!(matches!(
            check("<html>", &origin()),
            Err(SinkError::BadResponse { .. })
        ));
    }
}
