//! The browser harness of the widget's tests, taken from the console's (tests/it/console.rs,
//! which still has its own copy): chromedriver on a free port in a process group of its own,
//! a headless Chromium with this machine's flags and a profile of its own, and helpers that
//! wait for elements by accessible name.

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// Every wait in these tests, for an element, a text or an event.
pub const WAIT: Duration = Duration::from_secs(10);
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// chromedriver on a free port, ended when dropped (also when the test panics).
pub struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    pub async fn start() -> Option<Self> {
        if !Path::new(CHROMEDRIVER).exists() {
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + WAIT;
        let client = reqwest::Client::new();
        loop {
            if let Ok(response) = client.get(format!("{}/status", driver.url)).send().await {
                if response.status().is_success() {
                    return Some(driver);
                }
            }
            assert!(Instant::now() < deadline, "chromedriver did not answer within {WAIT:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A new browser with a profile of its own.
    pub async fn browser(&self, profile: &TempDir) -> Client {
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--window-size=1280,900",
            "--lang=en-GB",
        ]
        .map(String::from)
        .into_iter()
        .chain([format!("--user-data-dir={}", profile.path().display())])
        .collect::<Vec<_>>();
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("goog:chromeOptions".into(), json!({ "binary": CHROMIUM, "args": args }));
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The group, not only chromedriver: a browser whose session was never closed would
        // otherwise outlive it.
        // Until the group is empty: a browser forking while the signal went out leaves a
        // child behind that the next round ends.
        let group = format!("-{}", self.child.id());
        let _ = self.child.kill();
        let _ = self.child.wait();
        for _ in 0..50 {
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
            let left = Command::new("kill")
                .args(["-0", "--", &group])
                .stderr(Stdio::null())
                .status();
            if !left.is_ok_and(|s| s.success()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// XPath for a string literal (no quote-escaping needed for the texts used here).
pub fn literal(text: &str) -> String {
    assert!(!text.contains('"'));
    format!("\"{text}\"")
}

/// A button by its accessible name (its text).
pub fn button(name: &str) -> String {
    format!("//button[normalize-space(.)={}]", literal(name))
}

/// A form field by the text of its label.
pub fn labelled(label: &str) -> String {
    format!("//*[@id=//label[normalize-space(.)={}]/@for]", literal(label))
}

pub async fn find(browser: &Client, xpath: &str) -> fantoccini::elements::Element {
    browser
        .wait()
        .at_most(WAIT)
        .for_element(Locator::XPath(xpath))
        .await
        .unwrap_or_else(|e| panic!("{xpath} did not appear within {WAIT:?}: {e}"))
}

/// Waits until the element at `xpath` is displayed and enabled, then clicks it.
pub async fn click(browser: &Client, xpath: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let element = find(browser, xpath).await;
        if element.is_displayed().await.unwrap_or(false) && element.is_enabled().await.unwrap_or(false) {
            element.click().await.unwrap();
            return;
        }
        assert!(Instant::now() < deadline, "{xpath} not clickable within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the text of the element at `xpath` contains `expected`.
pub async fn wait_for_text(browser: &Client, xpath: &str, expected: &str) {
    let deadline = Instant::now() + WAIT;
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Ok(element) = browser.find(Locator::XPath(xpath)).await {
            last = element.text().await.unwrap_or_default();
            if last.contains(expected) {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{xpath} did not show {expected:?} within {WAIT:?}; it showed {last:?}");
}

pub fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Signs in to the staff console through its form (the "Staff token" field and "Sign in").
pub async fn sign_in_to_console(browser: &Client, origin: &str, token: &str) {
    browser.goto(&format!("{origin}/console")).await.unwrap();
    find(browser, &labelled("Staff token"))
        .await
        .send_keys(token)
        .await
        .unwrap();
    click(browser, &button("Sign in")).await;
}
