//! The dashboard in a real headless Chromium, driven over WebDriver (fantoccini) against the
//! real server: one `chromedriver` per test on a free port, a fresh profile, killed with its
//! browser when the test ends, also when it panics. `scripts/ensure-chromium` installs Debian's
//! `chromium` and `chromium-driver`.

mod actions;
mod connect;
mod review;
mod share_tokens;

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use fantoccini::{Client, ClientBuilder, Locator, elements::Element};
use hyper_util::client::legacy::connect::HttpConnector;
use reqwest::StatusCode;
use serde_json::json;

use crate::{
    dashboard::{PASSWORD, TOKENS},
    helpers::{TestApp, expect_status},
};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long a wait for a condition polls before it fails the test.
const WAIT: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(100);

/// Chromium's flags: headless, as root in a container, and quiet on a closed network (without
/// the background-networking flags it keeps trying to reach Google's hosts).
const FLAGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--window-size=1280,900",
    "--lang=en-US",
];

/// One browser on one `TestApp`: a `chromedriver` process (which starts Chromium) and a
/// WebDriver session on it.
pub struct Chrome {
    client: Client,
    base: String,
    // Dropped in this order: the driver and its browser, then their profile.
    _driver: Driver,
    _profile: tempfile::TempDir,
}

/// The chromedriver process, in a process group of its own that Chromium and its helpers
/// inherit: dropping it kills all of them (also when the test panics). Killing chromedriver
/// alone would leave Chromium running.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let killed = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !killed {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// A port nobody listens on right now (the OS's choice for port 0).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Chrome {
    /// Starts chromedriver and Chromium with a fresh profile, pointed at `app`.
    pub async fn start(app: &TestApp) -> Chrome {
        for binary in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                std::path::Path::new(binary).exists(),
                "{binary} is missing: run scripts/ensure-chromium (scripts/test does)"
            );
        }
        let profile = tempfile::tempdir().expect("temp dir");
        let log = profile.path().join("chromedriver.log");
        let port = free_port();
        let driver = Driver({
            use std::os::unix::process::CommandExt;
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .arg(format!("--log-path={}", log.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .expect("start chromedriver")
        });
        let client = connect_when_ready(port, &profile.path().join("profile"), &log).await;
        client
            .update_timeouts(fantoccini::wd::TimeoutConfiguration::new(
                None,
                Some(WAIT),
                Some(Duration::ZERO),
            ))
            .await
            .expect("set WebDriver timeouts");
        Chrome {
            client,
            base: app.address.clone(),
            _driver: driver,
            _profile: profile,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Opens a path of the app (and waits for the page to load).
    pub async fn goto(&self, path: &str) {
        self.client
            .goto(&self.url(path))
            .await
            .unwrap_or_else(|e| panic!("open {path}: {e}"));
    }

    /// The path (and query) of the page shown.
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("current URL");
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// The one element matching `selector` (CSS); panics when there is none or several.
    async fn one(&self, selector: &str) -> Element {
        let mut found = self
            .client
            .find_all(Locator::Css(selector))
            .await
            .unwrap_or_else(|e| panic!("find {selector}: {e}"));
        if found.len() != 1 {
            panic!(
                "expected one element {selector} on {}, found {}",
                self.path().await,
                found.len()
            );
        }
        found.remove(0)
    }

    /// How many elements match `selector` (CSS).
    pub async fn count(&self, selector: &str) -> usize {
        self.client
            .find_all(Locator::Css(selector))
            .await
            .unwrap_or_else(|e| panic!("find {selector}: {e}"))
            .len()
    }

    /// Types `value` into the form field whose id or name is `field`, replacing its content.
    pub async fn fill(&self, field: &str, value: &str) {
        let input = self
            .one(&format!("[id=\"{field}\"], [name=\"{field}\"]"))
            .await;
        input.clear().await.expect("clear the field");
        input
            .send_keys(value)
            .await
            .unwrap_or_else(|e| panic!("type into {field}: {e}"));
    }

    /// Chooses the option with `value` in the select whose id or name is `field`.
    pub async fn select(&self, field: &str, value: &str) {
        self.one(&format!("select[id=\"{field}\"], select[name=\"{field}\"]"))
            .await
            .select_by_value(value)
            .await
            .unwrap_or_else(|e| panic!("choose {value} in {field}: {e}"));
    }

    /// The buttons whose visible text is `text`.
    async fn buttons(&self, text: &str) -> Vec<Element> {
        let xpath = format!("//button[normalize-space()='{text}']");
        self.client
            .find_all(Locator::XPath(&xpath))
            .await
            .unwrap_or_else(|e| panic!("find button {text:?}: {e}"))
    }

    /// Clicks the one button labelled `text` (and waits for the page it loads).
    pub async fn click_button(&self, text: &str) {
        let mut buttons = self.buttons(text).await;
        if buttons.len() != 1 {
            panic!(
                "expected one button {text:?} on {}, found {}",
                self.path().await,
                buttons.len()
            );
        }
        buttons
            .remove(0)
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {text:?}: {e}"));
    }

    /// How many buttons labelled `text` the page shows.
    pub async fn button_count(&self, text: &str) -> usize {
        self.buttons(text).await.len()
    }

    /// Chooses the file at `path` in the file input whose id or name is `field` (WebDriver types
    /// the path into `<input type=file>`).
    pub async fn upload(&self, field: &str, path: &std::path::Path) {
        let path = path.to_str().expect("a UTF-8 path");
        self.one(&format!(
            "input[type=file][id=\"{field}\"], input[type=file][name=\"{field}\"]"
        ))
        .await
        .send_keys(path)
        .await
        .unwrap_or_else(|e| panic!("choose {path} in {field}: {e}"));
    }

    /// The current value of the form field whose id or name is `field`.
    pub async fn value(&self, field: &str) -> String {
        self.one(&format!("[id=\"{field}\"], [name=\"{field}\"]"))
            .await
            .prop("value")
            .await
            .unwrap_or_else(|e| panic!("value of {field}: {e}"))
            .unwrap_or_default()
    }

    /// The rendered texts of the elements matching `selector` (CSS), in document order.
    pub async fn texts(&self, selector: &str) -> Vec<String> {
        let mut texts = vec![];
        for element in self
            .client
            .find_all(Locator::Css(selector))
            .await
            .unwrap_or_else(|e| panic!("find {selector}: {e}"))
        {
            texts.push(element.text().await.expect("an element's text"));
        }
        texts
    }

    /// The attribute `name` of the elements matching `selector` (CSS), in document order (empty
    /// for an element without it).
    pub async fn attrs(&self, selector: &str, name: &str) -> Vec<String> {
        let mut values = vec![];
        for element in self
            .client
            .find_all(Locator::Css(selector))
            .await
            .unwrap_or_else(|e| panic!("find {selector}: {e}"))
        {
            values.push(
                element
                    .attr(name)
                    .await
                    .expect("an element's attribute")
                    .unwrap_or_default(),
            );
        }
        values
    }

    /// Clicks the one element matching `selector` (CSS).
    pub async fn click(&self, selector: &str) {
        self.one(selector)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {selector}: {e}"));
    }

    /// The rendered text of the one element matching `selector` (CSS).
    pub async fn text(&self, selector: &str) -> String {
        self.one(selector)
            .await
            .text()
            .await
            .unwrap_or_else(|e| panic!("text of {selector}: {e}"))
    }

    /// Waits until the text of `selector` is `expected`, without reloading the page: the page
    /// may navigate or reload itself meanwhile. Polls every 100 ms for up to 15 s.
    pub async fn wait_for_text(&self, selector: &str, expected: &str) {
        let start = Instant::now();
        let mut last = None;
        loop {
            // The element may not exist yet, or go stale while the page reloads: try again.
            if let Ok(element) = self.client.find(Locator::Css(selector)).await
                && let Ok(text) = element.text().await
            {
                if text == expected {
                    return;
                }
                last = Some(text);
            }
            if start.elapsed() > WAIT {
                let path = self.path().await;
                let heading = match self.client.find(Locator::Css("h1")).await {
                    Ok(h1) => h1.text().await.unwrap_or_default(),
                    Err(_) => String::new(),
                };
                panic!(
                    "waited {WAIT:?} for {selector} to read {expected:?} on {path} \
                     (heading {heading:?}); last seen: {last:?}"
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The page's HTML as the DOM has it now.
    /// Runs a script in the page and returns its result.
    pub async fn execute(&self, script: &str) -> serde_json::Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}"))
    }

    pub async fn source(&self) -> String {
        self.client.source().await.expect("page source")
    }

    /// Saves a PNG of the window as `docs/screenshots/<name>.png`, only when
    /// `IDSHARE_SCREENSHOTS=1`, so that ordinary runs leave the committed pictures alone.
    pub async fn screenshot(&self, name: &str) {
        if std::env::var("IDSHARE_SCREENSHOTS").as_deref() != Ok("1") {
            return;
        }
        let png = self.client.screenshot().await.expect("screenshot");
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
        std::fs::create_dir_all(&dir).expect("docs/screenshots");
        // Both backends' tests may write the same picture at once: write, then rename.
        let partial = dir.join(format!(".{name}.{}.png", std::process::id()));
        std::fs::write(&partial, png).expect("write screenshot");
        std::fs::rename(&partial, dir.join(format!("{name}.png"))).expect("rename screenshot");
    }
}

/// Waits until chromedriver on `port` answers, then opens a session with a fresh Chromium
/// profile in `data_dir`.
async fn connect_when_ready(
    port: u16,
    data_dir: &std::path::Path,
    log: &std::path::Path,
) -> Client {
    let webdriver = format!("http://127.0.0.1:{port}");
    let status = reqwest::Client::new();
    let start = Instant::now();
    loop {
        let ready = match status.get(format!("{webdriver}/status")).send().await {
            Ok(r) => r
                .json::<serde_json::Value>()
                .await
                .is_ok_and(|v| v["value"]["ready"] == true),
            Err(_) => false,
        };
        if ready {
            break;
        }
        if start.elapsed() > WAIT {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            panic!("chromedriver did not answer on port {port} in {WAIT:?}; its log:\n{log}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut args: Vec<String> = FLAGS.iter().map(|f| (*f).to_owned()).collect();
    args.push(format!("--user-data-dir={}", data_dir.display()));
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
    });
    let serde_json::Value::Object(capabilities) = capabilities else {
        unreachable!("an object")
    };
    ClientBuilder::new(HttpConnector::new())
        .capabilities(capabilities)
        .connect(&webdriver)
        .await
        .unwrap_or_else(|e| {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            panic!("no Chromium session from chromedriver: {e}; its log:\n{log}")
        })
}

/// Signs in through the form, waits for the dashboard's first page, then opens Share Tokens.
pub async fn sign_in(chrome: &Chrome, email: &str) {
    chrome.goto("/dashboard").await;
    assert_eq!(
        chrome.path().await,
        "/dashboard/sign-in",
        "signed out first"
    );
    chrome.fill("email", email).await;
    chrome.fill("password", PASSWORD).await;
    chrome.click_button("Sign in").await;
    chrome.wait_for_text("h1", "Overview").await;
    chrome.goto(TOKENS).await;
    chrome.wait_for_text("h1", "Share Tokens").await;
    assert!(
        chrome.text(".account span").await.starts_with(email),
        "the header names the user"
    );
}

pub async fn sign_out(chrome: &Chrome) {
    chrome.click_button("Sign out").await;
    chrome.wait_for_text("h1", "Sign in to idshare").await;
}

/// Waits until the workers have finished the inquiry's pipeline (they race `drain()` in
/// `connect_setup`, which may return while a worker still holds a job).
pub async fn wait_until_completed(app: &TestApp, key: &str, inquiry: &str) {
    let start = Instant::now();
    loop {
        let body = expect_status(
            app.get(key, &format!("/api/v1/inquiries/{inquiry}")).await,
            StatusCode::OK,
        )
        .await;
        let status = body["data"]["attributes"]["status"].clone();
        if status == "completed" {
            return;
        }
        assert!(start.elapsed() < WAIT, "{inquiry} is still {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
