//! The web viewer end to end in headless Chromium: the page fetches a sample slice and its
//! mask, uploads them to the API, and draws the predicted overlay on a canvas; a demo it cannot
//! fetch is shown as an error.
//!
//! Needs Debian's `chromium` (`.ci/run` installs it and sets TUMORSCAN_REQUIRE_BROWSER=1, which
//! turns a missing browser into a failure; elsewhere the test says SKIPPED and passes).

mod common;
use common::*;
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn get(port: u16, path: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

fn chromium() -> Option<&'static str> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
}

/// Start `tumorscan serve --samples ...` on a free port and wait for it; `None` (test skipped)
/// when there is no browser to drive it.
fn server_and_browser() -> Option<(Server, u16, &'static str)> {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var("TUMORSCAN_REQUIRE_BROWSER").is_err(),
            "chromium is required but not installed"
        );
        eprintln!("SKIPPED: chromium not installed (apt-get install chromium)");
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let root = repo_root();
    let server = Server(
        Command::new(binary())
            .args([
                "serve",
                "--addr",
                &format!("127.0.0.1:{port}"),
                "--samples",
                "samples/TCGA_CS_5393_19990606",
            ])
            .current_dir(&root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let t0 = Instant::now();
    while get(port, "/health").is_none_or(|r| !r.contains("\"ok\"")) {
        assert!(t0.elapsed() < Duration::from_secs(60), "server did not come up");
        std::thread::sleep(Duration::from_millis(200));
    }
    Some((server, port, browser))
}

/// The page's DOM once headless Chromium has run it.
fn page_dom(browser: &str, url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--virtual-time-budget=30000", "--dump-dom", url])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn viewer_draws_the_overlay_after_an_upload() {
    let Some((_server, port, browser)) = server_and_browser() else {
        return;
    };
    let dom = page_dom(
        browser,
        &format!("http://127.0.0.1:{port}/?demo=/samples/TCGA_CS_5393_19990606_8.tif"),
    );
    assert!(
        dom.contains("data-state=\"done\""),
        "page did not finish: {}",
        &dom[..dom.len().min(2000)]
    );
    assert!(
        dom.contains("data-overlay=\"drawn\""),
        "no overlay drawn: {}",
        &dom[..dom.len().min(2000)]
    );
    assert!(dom.contains("Dice vs truth"), "ground truth compared");
}

#[test]
fn viewer_reports_a_demo_it_cannot_fetch() {
    let Some((_server, port, browser)) = server_and_browser() else {
        return;
    };
    let dom = page_dom(browser, &format!("http://127.0.0.1:{port}/?demo=/samples/no_such_slice.tif"));
    assert!(
        dom.contains("data-state=\"error\"") && dom.contains("cannot fetch demo /samples/no_such_slice.tif: HTTP 404"),
        "failure not shown: {}",
        &dom[..dom.len().min(2000)]
    );
    // A link naming another site's file is refused before anything is fetched or uploaded.
    let dom = page_dom(browser, &format!("http://127.0.0.1:{port}/?demo=http://127.0.0.1:9/x.tif"));
    assert!(
        dom.contains("data-state=\"error\"") && dom.contains("not a path on this server"),
        "foreign demo URL not refused: {}",
        &dom[..dom.len().min(2000)]
    );
}
