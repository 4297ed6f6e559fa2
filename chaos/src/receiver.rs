//! An HTTP server that records what it receives: the test's stand-in for
//! Slack, a SIEM's HTTP collector or any webhook, run in the test's own
//! process (on a listener that may live in a test host's namespace).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use axum::Router;
use tokio::sync::oneshot;

/// One request as it arrived.
#[derive(Clone, Debug)]
pub struct Received {
    /// Its method.
    pub method: String,
    /// Its path.
    pub path: String,
    /// The address it came from.
    pub peer: IpAddr,
    /// Its headers (lower-case names).
    pub headers: BTreeMap<String, String>,
    /// Its body.
    pub body: String,
    /// The status it was answered with.
    pub status: u16,
    /// When it arrived (before any delay).
    pub at: Instant,
}

/// How the receiver answers a request.
#[derive(Clone, Debug)]
pub struct Answer {
    /// The status.
    pub status: u16,
    /// Headers to add.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: String,
}

impl Answer {
    /// `status` with no headers and an empty body.
    pub fn status(status: u16) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: String::new(),
        }
    }
}

/// Decides the answer to a request, like the real receiver would.
type Answering = Box<dyn Fn(&Received) -> Answer + Send + Sync>;

struct Shared {
    received: Mutex<Vec<Received>>,
    status: AtomicU16,
    delay_ms: AtomicU64,
    answering: Option<Answering>,
}

/// A recording HTTP server; it stops when dropped.
pub struct HttpReceiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HttpReceiver {
    /// Serves on `listener` from a thread of its own, answering 200 (or
    /// what [`HttpReceiver::respond_with`] says) with an empty body.
    pub fn start(listener: std::net::TcpListener) -> std::io::Result<HttpReceiver> {
        Self::serve(listener, None)
    }

    /// Serves on `listener`, answering each request as `answering` decides.
    pub fn answering(
        listener: std::net::TcpListener,
        answering: impl Fn(&Received) -> Answer + Send + Sync + 'static,
    ) -> std::io::Result<HttpReceiver> {
        Self::serve(listener, Some(Box::new(answering)))
    }

    fn serve(
        listener: std::net::TcpListener,
        answering: Option<Answering>,
    ) -> std::io::Result<HttpReceiver> {
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            received: Mutex::new(Vec::new()),
            status: AtomicU16::new(200),
            delay_ms: AtomicU64::new(0),
            answering,
        });
        let (shutdown, stopped) = oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let app = Router::new()
            .fallback(record)
            .with_state(Arc::clone(&shared));
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                let service = app.into_make_service_with_connect_info::<SocketAddr>();
                let _ = axum::serve(listener, service)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await;
            });
        });
        Ok(HttpReceiver {
            addr,
            shared,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// The address it serves on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every request so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.shared
            .received
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Answers further requests with `status` (e.g. 503 for a sink that is
    /// down), unless the receiver was started [`HttpReceiver::answering`].
    pub fn respond_with(&self, status: u16) {
        self.shared.status.store(status, Ordering::Relaxed);
    }

    /// Waits this long before answering each request (a slow sink).
    pub fn delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.shared.delay_ms.store(ms, Ordering::Relaxed);
    }
}

impl Drop for HttpReceiver {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn record(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = Instant::now();
    let delay = shared.delay_ms.load(Ordering::Relaxed);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let headers = headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut request = Received {
        method: method.to_string(),
        path: uri.path().to_owned(),
        peer: peer.ip(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        status: 0,
        at,
    };
    let answer = match &shared.answering {
        Some(answering) => answering(&request),
        None => Answer::status(shared.status.load(Ordering::Relaxed)),
    };
    request.status = answer.status;
    shared
        .received
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(request);
    let mut response = Response::new(Body::from(answer.body));
    *response.status_mut() =
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in answer.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// Whether `text` names alert id `id` as a whole word: `n2.x.a-1` is not
/// named by `n2.x.a-12`.
pub fn names_id(text: &str, id: &str) -> bool {
    text.match_indices(id).any(|(at, _)| {
        let next = text[at + id.len()..].chars().next();
        !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    })
}
