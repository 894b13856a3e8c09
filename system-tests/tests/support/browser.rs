//! A real headless Chromium (Debian's `chromium` and `chromium-driver`,
//! which `cargo xtask test` installs) driven over WebDriver, with a fresh
//! profile per browser. Screenshots of each step land in
//! `test-artifacts/browser/<test>/` (ignored by git) for people to look at.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

use super::root;

/// The screens a buyer uses: a laptop's browser window and a phone.
#[derive(Clone, Copy, Debug)]
pub enum Screen {
    /// 1280×761 CSS pixels.
    Desktop,
    /// 390×844 CSS pixels at twice the density, with a phone's user agent.
    Phone,
}

pub struct Browser {
    pub client: Client,
    driver: Child,
    profile: PathBuf,
    shots: PathBuf,
}

impl Browser {
    pub async fn start(test: &str) -> Self {
        Self::start_on(test, Screen::Desktop).await
    }

    /// A Chromium session on `screen`. A session that fails to start (a
    /// driver that lost its port to another process, a browser that died
    /// starting on a loaded machine) is tried again with a new driver.
    pub async fn start_on(test: &str, screen: Screen) -> Self {
        const ATTEMPTS: u32 = 3;
        let mut attempt = 1;
        let (client, driver, profile) = loop {
            let (mut driver, port) = spawn_driver().await;
            let profile =
                std::env::temp_dir().join(format!("stampede-chromium-{}-{port}", std::process::id()));
            match ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities(screen, &profile))
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(client) => break (client, driver, profile),
                Err(e) if attempt < ATTEMPTS => {
                    eprintln!("a Chromium session did not start ({e}); trying again");
                    stop_driver(&mut driver);
                    let _ = std::fs::remove_dir_all(&profile);
                    attempt += 1;
                }
                Err(e) => panic!("a Chromium session, after {ATTEMPTS} attempts: {e}"),
            }
        };
        let shots = root().join("test-artifacts/browser").join(test);
        let _ = std::fs::remove_dir_all(&shots);
        std::fs::create_dir_all(&shots).unwrap();
        Self { client, driver, profile, shots }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// Saves what the browser shows now as `<step>.png`.
    pub async fn screenshot(&self, step: &str) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(self.shots.join(format!("{step}.png")), png).unwrap();
    }

    /// Waits up to `seconds` for an element matching `css`.
    pub async fn wait_for(&self, css: &str, seconds: u64) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(seconds))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no `{css}` within {seconds} s: {e}"))
    }

    /// Waits up to `seconds` for the path of the current URL to start with `prefix`.
    pub async fn wait_for_path(&self, prefix: &str, seconds: u64) -> String {
        let started = Instant::now();
        loop {
            let url = self.client.current_url().await.unwrap();
            if url.path().starts_with(prefix) {
                return url.path().to_owned();
            }
            assert!(started.elapsed() < Duration::from_secs(seconds), "still at {url} after {seconds} s");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Runs `script` in the page and returns what it returns.
    pub async fn js(&self, script: &str) -> serde_json::Value {
        self.client.execute(script, vec![]).await.unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    pub async fn text(&self, css: &str) -> String {
        self.client.find(Locator::Css(css)).await.unwrap().text().await.unwrap()
    }

    pub async fn close(self) {
        self.client.clone().close().await.unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        stop_driver(&mut self.driver);
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// chromedriver on a free port, listening.
async fn spawn_driver() -> (Child, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut command = Command::new("chromedriver");
    command.arg(format!("--port={port}")).stdout(Stdio::null()).stderr(Stdio::null());
    // Its own process group, so stopping it stops Chromium too.
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let driver = command.spawn().expect("chromedriver (`cargo xtask test` installs chromium-driver)");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(30), "chromedriver did not listen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (driver, port)
}

/// Stops chromedriver and the Chromium it started.
fn stop_driver(driver: &mut Child) {
    let group = format!("-{}", driver.id());
    let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
    let _ = driver.wait();
}

/// Headless Chromium with its own profile, as a laptop or a phone shows pages.
fn capabilities(screen: Screen, profile: &std::path::Path) -> serde_json::Map<String, serde_json::Value> {
    let mut options = json!({
        "binary": "/usr/bin/chromium",
        "args": [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--window-size=1280,761",
            format!("--user-data-dir={}", profile.display()),
        ],
    });
    if let Screen::Phone = screen {
        options["mobileEmulation"] = json!({
            "deviceMetrics": {"width": 390, "height": 844, "pixelRatio": 2.0, "touch": true, "mobile": true},
            "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile",
        });
    }
    serde_json::Map::from_iter([("goog:chromeOptions".to_owned(), options)])
}
