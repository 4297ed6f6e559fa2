//! A real headless Chromium for the console test, driven over the DevTools
//! protocol, and the loopback port it reaches a lab host's API through.
//!
//! Chromium runs in the machine's own namespace and the node's API listens
//! inside a lab namespace, so a forwarder accepts on 127.0.0.1 and opens
//! each outbound connection inside the namespace. Nothing is added to the
//! machine's interfaces or routes; everything stops when the guards drop.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use headless_chrome::protocol::cdp::{Emulation, Page};
use headless_chrome::{Browser, LaunchOptions, Tab};

/// Debian's Chromium.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// The width of the pages, in CSS pixels.
const WIDTH: u32 = 1440;

/// Forwards `127.0.0.1:<port>` to `target` inside network namespace `netns`
/// until dropped.
pub struct Forwarder {
    /// Where to connect on the loopback.
    pub local: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Forwarder {
    /// Starts forwarding.
    pub fn start(netns: &str, target: SocketAddr) -> io::Result<Forwarder> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let local = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let netns = netns.to_owned();
        let stopped = Arc::clone(&stop);
        let accept = std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let _ = client.set_nonblocking(false);
                        let netns = netns.clone();
                        std::thread::spawn(move || {
                            let upstream = stockade_chaos::netlab::in_netns(&netns, || {
                                TcpStream::connect_timeout(&target, Duration::from_secs(10))
                            });
                            if let Ok(upstream) = upstream {
                                pipe(client, upstream);
                            }
                        });
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Ok(Forwarder {
            local,
            stop,
            accept: Some(accept),
        })
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// Copies both ways until either side closes.
fn pipe(client: TcpStream, upstream: TcpStream) {
    let (Ok(client2), Ok(upstream2)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let one = std::thread::spawn(move || copy(client, upstream));
    copy(upstream2, client2);
    let _ = one.join();
}

fn copy(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}

/// A headless Chromium with a profile of its own, killed with every process
/// it started when dropped.
pub struct Chromium {
    browser: Option<Browser>,
    profile: PathBuf,
}

impl Chromium {
    /// Starts Chromium (never a downloaded one) with its profile in `dir`.
    pub fn launch(dir: &Path) -> Chromium {
        let profile = dir.join("chromium-profile");
        let options = LaunchOptions {
            path: Some(PathBuf::from(CHROMIUM)),
            headless: true,
            // Tests run as root, where Chromium's sandbox cannot start.
            sandbox: false,
            window_size: Some((WIDTH, 1000)),
            user_data_dir: Some(profile.clone()),
            idle_browser_timeout: Duration::from_secs(900),
            args: vec![
                "--no-first-run".as_ref(),
                "--disable-dev-shm-usage".as_ref(),
                "--hide-scrollbars".as_ref(),
                "--force-device-scale-factor=1".as_ref(),
            ],
            ..LaunchOptions::default()
        };
        let browser = Browser::new(options).expect("Chromium starts");
        Chromium {
            browser: Some(browser),
            profile,
        }
    }

    /// A new tab with generous timeouts.
    pub fn tab(&self) -> Arc<Tab> {
        let tab = self
            .browser
            .as_ref()
            .expect("the browser runs until dropped")
            .new_tab()
            .expect("a tab");
        tab.set_default_timeout(Duration::from_secs(60));
        tab
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        // The crate kills the browser process; its helpers (zygote,
        // renderers, GPU) are found by the profile they were given.
        drop(self.browser.take());
        let marker = self.profile.to_string_lossy().into_owned();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = processes_mentioning(&marker);
            if left.is_empty() || Instant::now() > deadline {
                for pid in left {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// The processes whose command line holds `marker`.
fn processes_mentioning(marker: &str) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(marker))
        })
        .collect()
}

/// Runs the statements `script` in the page.
pub fn run(tab: &Tab, script: &str) {
    tab.evaluate(script, false)
        .unwrap_or_else(|e| panic!("{script}: {e}"));
}

/// The value of the expression `expr` in the page, through JSON (the
/// protocol hands back arrays and objects by reference otherwise).
pub fn eval(tab: &Tab, expr: &str) -> serde_json::Value {
    let script = format!("JSON.stringify({expr})");
    let text = tab
        .evaluate(&script, false)
        .unwrap_or_else(|e| panic!("{expr}: {e}"))
        .value;
    text.as_ref()
        .and_then(|t| t.as_str())
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(serde_json::Value::Null)
}

/// Waits until `script` is true in the page, or fails with what it saw.
pub fn wait_until(tab: &Tab, what: &str, script: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        if eval(tab, script) == serde_json::Value::Bool(true) {
            return;
        }
        if Instant::now() > deadline {
            let text = eval(tab, "document.body.innerText");
            panic!("{what}: not within {timeout:?}; the page says:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A PNG of the whole page: the viewport set to the page's height.
pub fn screenshot(tab: &Tab, path: &Path) {
    let viewport = |height: u32| {
        tab.call_method(Emulation::SetDeviceMetricsOverride {
            width: WIDTH,
            height,
            device_scale_factor: 1.0,
            mobile: false,
            scale: None,
            screen_width: None,
            screen_height: None,
            position_x: None,
            position_y: None,
            dont_set_visible_size: None,
            screen_orientation: None,
            viewport: None,
            display_feature: None,
            device_posture: None,
        })
        .expect("set the viewport");
        std::thread::sleep(Duration::from_millis(300));
    };
    // Small first, so that the height measured is the content's.
    viewport(500);
    let height = eval(tab, "document.documentElement.scrollHeight")
        .as_u64()
        .map_or(1000, |h| h.clamp(500, 8000) as u32);
    viewport(height);
    let png = tab
        .capture_screenshot(Page::CaptureScreenshotFormatOption::Png, None, None, true)
        .expect("a screenshot");
    std::fs::write(path, png).expect("write the screenshot");
    println!("screenshot: {}", path.display());
}
