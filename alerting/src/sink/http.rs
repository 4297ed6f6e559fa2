//! HTTP delivery shared by Slack and webhooks: one client per sink with
//! timeouts and no redirects, and answers turned into [`SinkError`]s that
//! name the URL without its secrets.

use std::error::Error as _;
use std::time::Duration;

use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Client, Response, StatusCode, Url};
use time::format_description::well_known::Rfc2822;
use time::OffsetDateTime;

use super::error::Origin;
use super::{SinkError, CONNECT_TIMEOUT, WRITE_TIMEOUT};

/// The most of a 2xx answer that is read (an Elasticsearch bulk answer for
/// a full batch is a few tens of kilobytes).
const MAX_ANSWER: usize = 1 << 20;

/// The most of an error answer that is read: only its start is reported.
const MAX_ERROR_ANSWER: usize = 4 << 10;

/// An HTTP endpoint alerts are posted to.
pub(crate) struct Http {
    client: Client,
    url: Url,
    authorization: Option<HeaderValue>,
    origin: Origin,
}

impl Http {
    /// The endpoint `url` (configuration field `field`) of sink `sink`.
    /// `secret_url` says that the URL itself is a credential (Slack), so
    /// that errors show only its scheme and host; `authorization` is the
    /// whole `Authorization` header value, and is kept out of errors too.
    pub(crate) fn new(
        sink: &str,
        url: &str,
        field: &'static str,
        secret_url: bool,
        authorization: Option<String>,
    ) -> Result<Http, SinkError> {
        let mut secrets: Vec<String> = authorization.iter().cloned().collect();
        let parsed = Url::parse(url);
        let target = match &parsed {
            Ok(u) => public_part(u, secret_url),
            Err(_) => "an unreadable URL".to_owned(),
        };
        if secret_url {
            secrets.push(url.to_owned());
            if let Ok(u) = &parsed {
                secrets.extend([u.path().to_owned()].into_iter().filter(|p| p.len() > 1));
            }
        }
        if let Some(query) = parsed.as_ref().ok().and_then(|u| u.query()) {
            secrets.push(query.to_owned());
        }
        let origin = Origin::new(sink, target, secrets);
        let url = parsed.map_err(|e| origin.config(field, format!("not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(origin.config(field, "not an http(s) URL"));
        }
        let authorization = authorization
            .map(|value| {
                let mut value = HeaderValue::from_str(&value)
                    .map_err(|_| origin.config("target.token", "not valid in an HTTP header"))?;
                value.set_sensitive(true);
                Ok(value)
            })
            .transpose()?;
        let client = Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            // The whole exchange: connecting, then writing and the answer.
            .timeout(CONNECT_TIMEOUT + WRITE_TIMEOUT)
            // A redirect would carry the alerts, and perhaps the token,
            // somewhere not configured; a 3xx is reported instead.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("stockade/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| origin.config("target", describe(&e)))?;
        Ok(Http {
            client,
            url,
            authorization,
            origin,
        })
    }

    /// The sink's name and address, for errors.
    pub(crate) fn origin(&self) -> &Origin {
        &self.origin
    }

    /// POSTs `body` as `content_type` and returns the 2xx answer's body;
    /// any other status is [`SinkError::Rejected`].
    pub(crate) async fn post(
        &self,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<String, SinkError> {
        let mut request = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, content_type)
            .body(body);
        if let Some(auth) = &self.authorization {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        let mut response = request.send().await.map_err(|e| self.error(&e))?;
        let status = response.status();
        if status.is_success() {
            return self.read(&mut response, MAX_ANSWER).await;
        }
        let retry_after = matches!(
            status,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
        )
        .then(|| response.headers().get(RETRY_AFTER))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| retry_after(v, OffsetDateTime::now_utc()));
        let body = self
            .read(&mut response, MAX_ERROR_ANSWER)
            .await
            .unwrap_or_default();
        Err(self.origin.rejected(status.as_u16(), &body, retry_after))
    }

    /// Up to `max` bytes of the answer's body, as text.
    async fn read(&self, response: &mut Response, max: usize) -> Result<String, SinkError> {
        let mut body = Vec::new();
        while body.len() < max {
            match response.chunk().await.map_err(|e| self.error(&e))? {
                Some(chunk) => body.extend_from_slice(&chunk),
                None => break,
            }
        }
        body.truncate(max);
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    /// The error a failed exchange is, without the URL reqwest puts in.
    fn error(&self, err: &reqwest::Error) -> SinkError {
        let reason = describe(err);
        if err.is_timeout() {
            self.origin.timeout(if err.is_connect() {
                "connecting"
            } else {
                "sending"
            })
        } else if chain_has_tls_error(err) {
            self.origin.tls(reason)
        } else if err.is_connect() {
            self.origin.unreachable(reason)
        } else {
            self.origin.io(std::io::Error::other(reason))
        }
    }
}

/// The URL as errors may show it: scheme, host and port, then the path
/// unless the URL is a credential; never user info, query or fragment.
fn public_part(url: &Url, secret_url: bool) -> String {
    let host = url.host_str().unwrap_or("");
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    let path = if secret_url { "/…" } else { url.path() };
    format!("{}://{host}{port}{path}", url.scheme())
}

/// The error and its causes on one line, the URL left out.
fn describe(err: &reqwest::Error) -> String {
    let mut text = match err.url() {
        Some(url) => err
            .to_string()
            .replace(&format!(" for url ({url})"), "")
            .replace(url.as_str(), "<url>"),
        None => err.to_string(),
    };
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Whether rustls refused somewhere down the causes (bad certificate, …).
fn chain_has_tls_error(err: &reqwest::Error) -> bool {
    let mut source = err.source();
    while let Some(cause) = source {
        if cause.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        source = cause.source();
    }
    false
}

/// A `Retry-After` value: seconds, or an HTTP date (then the time until it
/// from `now`, zero if it has passed).
fn retry_after(value: &str, now: OffsetDateTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = OffsetDateTime::parse(value, &Rfc2822).ok()?;
    Some((at - now).try_into().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        let now = OffsetDateTime::from_unix_timestamp(784_111_777).expect("valid instant");
        assert_eq!(retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:27 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon", now), None);
    }

    #[test]
    fn secret_urls_show_only_scheme_and_host() {
        let url = "https://hooks.slack.com/services/T0/B0/XYZ?x=1";
        let http = Http::new("ops", url, "target.webhook_url", true, None).expect("valid URL");
        assert_eq!(http.origin().target(), "https://hooks.slack.com/…");
        let plain = Http::new(
            "siem",
            "http://user:pw@127.0.0.1:8088/services/collector?token=abc",
            "target.url",
            false,
            Some("Splunk abc".into()),
        )
        .expect("valid URL");
        assert_eq!(
            plain.origin().target(),
            "http://127.0.0.1:8088/services/collector"
        );
        let err = Http::new("x", "ftp://a/b", "target.url", false, None).err();
        assert!(matches!(
            err,
            Some(SinkError::Config {
                field: "target.url",
                ..
            })
        ));
    }
}
