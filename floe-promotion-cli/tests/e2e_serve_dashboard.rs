//! End to end: the dashboard of `floe serve`.
//!
//! - over HTTP: sign-in with a static token gives an `HttpOnly`, `SameSite=Strict` session
//!   cookie; a form without the session's CSRF token is refused (403); no token or session id
//!   appears in a page; a bad token is refused (401);
//! - in real headless Chromium driven through chromedriver (WebDriver, fantoccini): a user
//!   signs in, sees the pending approval, approves it, and the page then shows the new
//!   version in prod. The test writes a screenshot to `target/tmp/dashboard.png`, and to
//!   `docs/dashboard.png` (the README's picture) when `FLOE_UPDATE_SCREENSHOT` is set.

mod common;
mod serving;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Workspace, push, three_env_manifest};
use fantoccini::{ClientBuilder, Locator};
use floe_promotion_oci::testing::TestRegistry;
use serde_json::json;
use serving::{Served, client, get, post, token_entry};

const ALICE: &str = "alice-dashboard-token-42";
const BOB: &str = "bob-dashboard-token-42";

/// A world where v1 waits for approval into prod (requested by bob).
async fn world(prefix: &str) -> (Workspace, Served, String) {
    let registry = TestRegistry::shared();
    let ns = registry.namespace(prefix);
    let mut manifest = three_env_manifest(
        &registry.host(),
        ns.as_ref(),
        &[(
            "prod",
            "approval:\n  rules:\n    - { name: release, required: 1, groups: [release-managers] }\n  timeout: 4h",
        )],
    );
    manifest.push_str("    server:\n      identity:\n        static_tokens: tokens.yaml\n");
    let ws = Workspace::new(&manifest);
    ws.write(
        "tokens.yaml",
        &format!(
            "tokens:\n{}{}",
            token_entry(ALICE, "alice", &["release-managers"]),
            token_entry(BOB, "bob", &["ci"])
        ),
    );
    push(&format!("{ns}/dev/app"), "v1.4.0", 1, None);
    let served = Served::start(&ws);
    let http = client();
    let promotions = served.url("/api/v1/promotions");
    let body = |from: &str, to: &str| json!({"artifact": "app", "version": "v1.4.0", "from": from, "to": to});
    post(&http, &promotions, Some(BOB), body("dev", "staging"))
        .await
        .expect(200);
    post(&http, &promotions, Some(BOB), body("staging", "prod"))
        .await
        .error(202, "approval_pending");
    let list = get(&http, &served.url("/api/v1/approvals?status=pending"))
        .await
        .json();
    let id = list["requests"][0]["id"]
        .as_str()
        .expect("request id")
        .to_string();
    (ws, served, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_http_only_strict_and_forms_need_the_csrf_token() {
    let (_ws, served, id) = world("dash-http").await;
    let http = client();

    let anonymous = get(&http, &served.url("/")).await.expect(200);
    assert!(
        anonymous.text.contains("sign in to vote"),
        "{}",
        anonymous.text
    );
    assert!(anonymous.text.contains("v1.4.0"));
    assert!(
        !anonymous.text.contains("/approve\""),
        "a vote form for nobody"
    );
    assert_eq!(anonymous.headers["cache-control"], "no-store");
    // The sign-in form's CSRF token, and the cookie that must come with it.
    let login_cookie = anonymous.headers["set-cookie"]
        .to_str()
        .expect("cookie")
        .to_string();
    assert!(
        login_cookie.contains("HttpOnly") && login_cookie.contains("SameSite=Strict"),
        "{login_cookie}"
    );
    let login_cookie = login_cookie
        .split(';')
        .next()
        .expect("name=value")
        .to_string();
    let login_csrf = anonymous
        .text
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("the sign-in form's CSRF field")
        .to_string();
    assert_eq!(login_cookie.split_once('=').expect("=").1, login_csrf);

    // A sign-in without the cookie (as a cross-site form would send it) is refused.
    let forged = http
        .post(served.url("/login"))
        .form(&[("token", ALICE), ("csrf", login_csrf.as_str())])
        .send()
        .await
        .expect("login");
    assert_eq!(forged.status(), 403);
    assert!(forged.headers().get("set-cookie").is_none());

    let bad = http
        .post(served.url("/login"))
        .header("cookie", &login_cookie)
        .form(&[("token", "wrong"), ("csrf", login_csrf.as_str())])
        .send()
        .await
        .expect("login");
    assert_eq!(bad.status(), 401);
    assert!(bad.headers().get("set-cookie").is_none());

    let login = http
        .post(served.url("/login"))
        .header("cookie", &login_cookie)
        .form(&[("token", ALICE), ("csrf", login_csrf.as_str())])
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), 303);
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .to_string();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    let session = cookie.split(';').next().expect("name=value").to_string();
    let session_id = session.split_once('=').expect("=").1.to_string();

    let page = http
        .get(served.url("/"))
        .header("cookie", &session)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("body");
    assert!(
        page.contains("Signed in as <strong id=\"actor\">alice</strong>"),
        "{page}"
    );
    assert!(
        !page.contains(ALICE) && !page.contains(BOB),
        "a token in the page"
    );
    assert!(!page.contains(&session_id), "the session id in the page");
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a CSRF field")
        .to_string();

    let approve = served.url(&format!("/ui/approvals/{id}/approve"));
    for (cookie, token) in [(Some(session.as_str()), "forged"), (None, csrf.as_str())] {
        let mut req = http.post(&approve).form(&[("csrf", token)]);
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        assert_eq!(req.send().await.expect("post").status(), 403);
    }
    let still = get(&http, &served.url("/api/v1/approvals?status=pending"))
        .await
        .json();
    assert_eq!(still["requests"].as_array().expect("requests").len(), 1);

    let approved = http
        .post(&approve)
        .header("cookie", &session)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .expect("post");
    assert_eq!(approved.status(), 303);
    let prod = get(&http, &served.url("/api/v1/environments/prod"))
        .await
        .json();
    assert_eq!(
        prod["environments"][0]["deployments"][0]["version"],
        "v1.4.0"
    );
    let decided = get(&http, &served.url("/api/v1/history?kind=approval_decided"))
        .await
        .json();
    assert_eq!(decided["events"][0]["actor"]["id"], "alice", "{decided}");
}

/// chromedriver on a free loopback port.
struct Driver(Child, u16);

impl Driver {
    fn start() -> Driver {
        let port = common::closed_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (scripts/registry-deps.sh installs chromium-driver)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver(child, port)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_signs_in_and_approves_in_headless_chromium() {
    let (_ws, served, _id) = world("dash-browser").await;
    let driver = Driver::start();
    let profile = tempfile::tempdir().expect("profile dir");
    let caps = json!({
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1280,1100",
                format!("--user-data-dir={}", profile.path().display()),
            ]
        }
    });
    let caps = caps.as_object().expect("object").clone();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let browser = ClientBuilder::rustls()
        .expect("rustls")
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.1))
        .await
        .expect("a WebDriver session in Chromium");

    let result = async {
        browser.goto(&served.url("/")).await?;
        let pending = browser
            .find(Locator::Css("#approvals"))
            .await?
            .text()
            .await?;
        assert!(
            pending.contains("v1.4.0") && pending.contains("staging → prod"),
            "{pending}"
        );
        browser
            .find(Locator::Css("#login input[name=token]"))
            .await?
            .send_keys(ALICE)
            .await?;
        browser
            .find(Locator::Css("#login button"))
            .await?
            .click()
            .await?;
        let actor = browser.wait().for_element(Locator::Css("#actor")).await?;
        assert_eq!(actor.text().await?, "alice");
        browser
            .find(Locator::Css("#approvals button.approve"))
            .await?
            .click()
            .await?;
        let flash = browser
            .wait()
            .for_element(Locator::Css("#flash"))
            .await?
            .text()
            .await?;
        assert!(flash.contains("is now in prod"), "{flash}");
        let prod = browser
            .find(Locator::Css("#env-prod .version"))
            .await?
            .text()
            .await?;
        assert_eq!(prod, "v1.4.0");
        assert!(browser.find(Locator::Css("#no-approvals")).await.is_ok());
        let png = browser.screenshot().await?;
        // Written under target/ on every run; into docs/ (the README's picture) on request,
        // so a test run leaves the repository's files as they were.
        let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
        std::fs::write(&path, &png).expect("writing the screenshot");
        eprintln!("dashboard screenshot: {}", path.display());
        if std::env::var_os("FLOE_UPDATE_SCREENSHOT").is_some() {
            let docs =
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/dashboard.png");
            std::fs::write(&docs, &png).expect("writing docs/dashboard.png");
        }
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        Ok::<(), fantoccini::error::CmdError>(())
    }
    .await;
    let _ = browser.close().await;
    result.expect("the browser session");
    drop(driver);
}
