//! The dashboard, end to end: a control plane with the tests' app deployed
//! and run, its pages and event streams read over real HTTP, and, in a real
//! headless Chromium driven over the DevTools protocol, signed into through
//! its form and looked at. The browser test skips, saying why, where no
//! Chromium is installed; `MODAL_REQUIRE_CHROMIUM=1` (as CI sets) makes that
//! a failure.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::*;
use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use headless_chrome::{Browser, LaunchOptions, Tab};
use modal_runtime::Client;
use modal_runtime::server::{Server, ServerConfig};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};

/// Whether the control plane records the calls it runs. Once it does, the
/// browser test checks that the map's calls are listed under "Recent
/// calls"; until then, that the table is there.
const RECENT_CALLS_RECORDED: bool = true;

/// A control plane of this test's own, with the tests' app deployed.
struct Plane {
    server: Server,
    /// A client with every right (this process's own).
    local: Client,
    data_dir: PathBuf,
}

impl Plane {
    /// Deploys the tests' app as `app` on a new control plane.
    async fn start(what: &str, app: &str) -> Plane {
        let data_dir = scratch_dir(what);
        let mut config = ServerConfig::new(&data_dir);
        config.stop_grace = Duration::from_secs(1);
        let server = Server::start(config).await.unwrap();
        let local = deploy(server.url(), app).await;
        Plane {
            server,
            local,
            data_dir,
        }
    }

    /// The HTTP listener's base URL.
    fn base(&self) -> String {
        self.server.http_url().unwrap().to_owned()
    }

    /// Stops it and removes its data.
    async fn stop(self) {
        self.server.shutdown().await;
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// An HTTP client that shows redirects instead of following them.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// The `name=value` of the session cookie a response sets, and the whole
/// `Set-Cookie` line.
fn session_cookie(headers: &HeaderMap) -> Option<(String, String)> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("modal_session="))
        .map(|line| (line.split(';').next().unwrap().to_owned(), line.to_owned()))
}

fn location(response: &reqwest::Response) -> &str {
    response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Posts the sign-in form with `token`, from a page of `origin`.
async fn sign_in(base: &str, origin: Option<&str>, token: &str) -> reqwest::Response {
    let mut request = http()
        .post(format!("{base}/dashboard/sign-in"))
        .form(&[("token", token)]);
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    request.send().await.unwrap()
}

/// Signs in with `token`; the session cookie.
async fn session_of(base: &str, token: &str) -> String {
    let response = sign_in(base, Some(base), token).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/dashboard");
    session_cookie(response.headers()).unwrap().0
}

async fn get(base: &str, path: &str, cookie: Option<&str>) -> reqwest::Response {
    let mut request = http().get(format!("{base}{path}"));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request.send().await.unwrap()
}

/// Reads an event stream until what it sent satisfies `done`, for at most
/// `within`; everything it sent.
async fn read_events(
    mut response: reqwest::Response,
    within: Duration,
    done: impl Fn(&str) -> bool,
) -> String {
    let deadline = tokio::time::Instant::now() + within;
    let mut seen = String::new();
    while !done(&seen) {
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .unwrap_or_else(|_| panic!("the stream did not send what was awaited: {seen}"))
            .unwrap();
        let Some(chunk) = chunk else {
            panic!("the stream ended before sending what was awaited: {seen}");
        };
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    seen
}

#[tokio::test]
async fn pages_need_a_session_and_posts_their_own_origin() {
    let plane = Plane::start("dashboard-sign-in", "shop").await;
    let (base, local) = (plane.base(), &plane.local);
    // Without a session: to the sign-in page, and no stream.
    for path in ["/dashboard", "/dashboard/apps/main/shop"] {
        let response = get(&base, path, None).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(location(&response), "/dashboard/sign-in", "{path}");
    }
    for path in ["/live", "/logs"] {
        let response = get(&base, &format!("/dashboard/apps/main/shop{path}"), None).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    let form = get(&base, "/dashboard/sign-in", None).await;
    assert_eq!(form.status(), StatusCode::OK);
    let csp = form.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'nonce-"),
        "{csp}"
    );
    assert_eq!(form.headers()["cross-origin-opener-policy"], "same-origin");
    assert_eq!(form.headers()["x-frame-options"], "DENY");
    assert!(form.text().await.unwrap().contains(r#"name="token""#));

    let (_, admin) = local
        .create_token("admin", None, "dashboard")
        .await
        .unwrap();
    // Another site's form, or a post that names no origin: refused, no session.
    for origin in [Some("http://evil.example"), Some("null"), None] {
        let response = sign_in(&base, origin, &admin).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{origin:?}");
        assert!(session_cookie(response.headers()).is_none(), "{origin:?}");
    }
    // A wrong token: refused, and never echoed.
    let wrong = "tk-000000000000.not-a-secret-at-all";
    let response = sign_in(&base, Some(&base), wrong).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(session_cookie(response.headers()).is_none());
    let page = response.text().await.unwrap();
    assert!(page.contains("not valid here"), "{page}");
    assert!(!page.contains("not-a-secret-at-all"), "{page}");

    // The right one: a session cookie that holds no token.
    let response = sign_in(&base, Some(&base), &admin).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (cookie, line) = session_cookie(response.headers()).unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/dashboard"] {
        assert!(line.contains(attribute), "{line}");
    }
    assert!(!line.contains(admin.split_once('.').unwrap().1), "{line}");
    let overview = get(&base, "/dashboard", Some(&cookie)).await;
    assert_eq!(overview.status(), StatusCode::OK);
    let html = overview.text().await.unwrap();
    assert!(
        html.contains(r#"href="/dashboard/apps/main/shop""#),
        "{html}"
    );
    // Signed in, the sign-in page sends the browser on.
    let again = get(&base, "/dashboard/sign-in", Some(&cookie)).await;
    assert_eq!(location(&again), "/dashboard");
    // Unknown and malformed apps name nothing.
    for path in ["/dashboard/apps/main/nope", "/dashboard/apps/main/%3Cx%3E"] {
        let response = get(&base, path, Some(&cookie)).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }

    // Signing out needs the same origin too, then ends the session.
    let refused = http()
        .post(format!("{base}/dashboard/sign-out"))
        .header("cookie", &cookie)
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        get(&base, "/dashboard", Some(&cookie)).await.status(),
        StatusCode::OK
    );
    let out = http()
        .post(format!("{base}/dashboard/sign-out"))
        .header("cookie", &cookie)
        .header("origin", &base)
        .send()
        .await
        .unwrap();
    assert_eq!(location(&out), "/dashboard/sign-in?ended=signed-out");
    assert!(
        session_cookie(out.headers())
            .unwrap()
            .1
            .contains("Max-Age=0")
    );
    let after = get(&base, "/dashboard", Some(&cookie)).await;
    assert_eq!(location(&after), "/dashboard/sign-in");
    plane.stop().await;
}

#[tokio::test]
async fn a_token_sees_its_environment_and_its_revocation_ends_its_session() {
    let plane = Plane::start("dashboard-envs", "shop").await;
    let (base, local) = (plane.base(), &plane.local);
    local.create_environment("staging").await.unwrap();
    let staging = local.with_environment("staging").unwrap();
    let manifest = modal_runtime::Manifest::read_from_binary(&test_app()).unwrap();
    staging
        .create_app(
            "depot",
            &manifest,
            modal_runtime::AppBinary::LocalPath(&test_app()),
            false,
        )
        .await
        .unwrap();
    let (info, deploy) = local
        .create_token("deploy", Some("staging"), "dashboard")
        .await
        .unwrap();
    let cookie = session_of(&base, &deploy).await;
    let html = get(&base, "/dashboard", Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(r#"href="/dashboard/apps/staging/depot""#),
        "{html}"
    );
    assert!(!html.contains("/dashboard/apps/main/shop"), "{html}");
    let other = get(&base, "/dashboard/apps/main/shop", Some(&cookie)).await;
    assert_eq!(other.status(), StatusCode::FORBIDDEN);
    let own = get(&base, "/dashboard/apps/staging/depot", Some(&cookie)).await;
    assert_eq!(own.status(), StatusCode::OK);
    let page = own.text().await.unwrap();
    assert!(page.contains(r#"<h1 id="app-name">depot</h1>"#), "{page}");
    let stream = get(&base, "/dashboard/apps/main/shop/live", Some(&cookie)).await;
    assert_eq!(stream.status(), StatusCode::FORBIDDEN);

    // An open stream refreshes, then ends once the token is revoked...
    let live = get(&base, "/dashboard/apps/staging/depot/live", Some(&cookie)).await;
    assert_eq!(live.status(), StatusCode::OK);
    assert!(
        live.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let revoke = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        local.revoke_token(&info.id).await.unwrap();
    };
    let (seen, ()) = tokio::join!(
        read_events(live, Duration::from_secs(20), |s| s
            .contains("event: signed-out")),
        revoke
    );
    assert!(seen.contains("event: functions"), "{seen}");
    assert!(seen.contains(r#"data-function="square""#), "{seen}");
    assert!(seen.contains("event: refreshed"), "{seen}");
    // ... and so does the session: the next page says why.
    let after = get(&base, "/dashboard", Some(&cookie)).await;
    assert_eq!(location(&after), "/dashboard/sign-in?ended=revoked");
    assert!(
        session_cookie(after.headers())
            .unwrap()
            .1
            .contains("Max-Age=0")
    );
    let told = get(&base, "/dashboard/sign-in?ended=revoked", None).await;
    assert!(told.text().await.unwrap().contains("was revoked"));

    // An invoke token sees the app, not its logs.
    let (_, invoke) = local
        .create_token("invoke", None, "dashboard")
        .await
        .unwrap();
    let cookie = session_of(&base, &invoke).await;
    let page = get(&base, "/dashboard/apps/main/shop", Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("needs a token of scope deploy"), "{page}");
    let logs = get(&base, "/dashboard/apps/main/shop/logs", Some(&cookie)).await;
    assert_eq!(logs.status(), StatusCode::FORBIDDEN);
    plane.stop().await;
}

#[tokio::test]
async fn the_log_tail_escapes_what_functions_print() {
    let plane = Plane::start("dashboard-logs", "shop").await;
    let (base, local) = (plane.base(), &plane.local);
    let shout = local.function::<(String,), usize>("shop", "shout");
    shout
        .remote(("<script>alert('tail')</script>".into(),))
        .await
        .unwrap();
    let (_, admin) = local
        .create_token("admin", None, "dashboard")
        .await
        .unwrap();
    let cookie = session_of(&base, &admin).await;
    let logs = get(&base, "/dashboard/apps/main/shop/logs", Some(&cookie)).await;
    assert_eq!(logs.status(), StatusCode::OK);
    let seen = read_events(logs, Duration::from_secs(20), |s| {
        s.contains("stdout says &lt;script&gt;alert('tail')&lt;/script&gt;")
    })
    .await;
    assert!(seen.starts_with("event: reset"), "{seen}");
    assert!(!seen.contains("<script>"), "{seen}");
    assert!(seen.contains(r#"<span class="fn">shout</span>"#), "{seen}");
    plane.stop().await;
}

// ----- on Docker -----

/// Whether a Docker Engine answers here; if not, says so (or fails, when
/// `MODAL_REQUIRE_DOCKER=1`).
fn docker_engine(test: &str) -> Option<String> {
    let name = std::process::Command::new("docker")
        .args(["info", "--format", "{{.Name}}"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    if name.is_none() {
        assert!(
            std::env::var("MODAL_REQUIRE_DOCKER").as_deref() != Ok("1"),
            "MODAL_REQUIRE_DOCKER=1, but no Docker Engine answers `docker info`"
        );
        eprintln!("skipped `{test}`: no Docker Engine answers `docker info` here");
    }
    name
}

/// A standalone control plane, stopped as an operator stops one (Ctrl-C,
/// which removes its containers) when dropped.
struct Interrupted(Standalone);

impl Drop for Interrupted {
    fn drop(&mut self) {
        // SAFETY: kill(2) touches no memory.
        unsafe { libc::kill(self.0.pid() as i32, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline && self.0.child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = std::fs::remove_dir_all(&self.0.data_dir);
    }
}

#[tokio::test]
async fn on_docker_a_container_shows_its_image_and_engine() {
    let Some(engine) = docker_engine("on_docker_a_container_shows_its_image_and_engine") else {
        return;
    };
    let http_addr = free_addr();
    let server = Interrupted(Standalone::start_in(
        scratch_dir("dashboard-docker"),
        &["--backend", "docker", "--http-addr", &http_addr],
    ));
    let base = format!("http://{http_addr}");
    let client = deploy(&server.0.url, "docked").await;
    let square = client.function::<(u64,), u64>("docked", "square");
    assert_eq!(square.remote((12,)).await.unwrap(), 144);
    let cookie = session_of(&base, &server.0.token).await;
    let page = get(&base, "/dashboard/apps/main/docked", Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    let row = page
        .split("<tr data-container=")
        .skip(1)
        .find(|row| row.contains("<td>square</td>"))
        .unwrap_or_else(|| panic!("no container of square is listed: {page}"));
    assert!(row.contains("<td>modal-rs-app:"), "{row}");
    assert!(row.contains(&format!("<td>{engine}</td>")), "{row}");
}

// ----- in a real browser -----

/// The Chromium to drive, or `None` (saying why) where there is none;
/// with `MODAL_REQUIRE_CHROMIUM=1`, a missing Chromium fails the test.
fn chromium(test: &str) -> Option<PathBuf> {
    match headless_chrome::browser::default_executable() {
        Ok(path) => Some(path),
        Err(why) => {
            assert!(
                std::env::var("MODAL_REQUIRE_CHROMIUM").as_deref() != Ok("1"),
                "MODAL_REQUIRE_CHROMIUM=1, but no Chromium is installed ({why}): \
                 `apt-get install chromium`, or set CHROME to its path"
            );
            eprintln!(
                "skipped `{test}`: no Chromium is installed ({why}); `apt-get install chromium`"
            );
            None
        }
    }
}

/// The value of `expression` in the tab's page.
fn js(tab: &Tab, expression: &str) -> serde_json::Value {
    tab.evaluate(expression, false)
        .unwrap_or_else(|e| panic!("`{expression}` failed in the page: {e}"))
        .value
        .unwrap_or(serde_json::Value::Null)
}

/// Waits until `expression` is true in the page, for at most `within`.
fn wait_until(tab: &Tab, what: &str, expression: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        if js(tab, expression) == serde_json::Value::Bool(true) {
            return;
        }
        if Instant::now() > deadline {
            let text = js(tab, "document.body ? document.body.innerText : ''");
            panic!("the page never showed {what} (`{expression}`); it shows:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The text of the first element matching `selector`.
fn text_of(tab: &Tab, selector: &str) -> String {
    tab.wait_for_element(selector)
        .unwrap_or_else(|e| panic!("no `{selector}` on the page: {e}"))
        .get_inner_text()
        .unwrap()
}

/// Saves a screenshot of the tab as `target/test-artefacts/NAME`; its path.
fn screenshot(tab: &Tab, name: &str) -> PathBuf {
    let png = tab
        .capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)
        .unwrap();
    let dir = target_dir().parent().unwrap().join("test-artefacts");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, png).unwrap();
    println!("screenshot: {}", path.display());
    path
}

/// Types `text` into the field `selector` and submits its form.
fn submit(tab: &Tab, selector: &str, text: &str) {
    let field = tab.wait_for_element(selector).unwrap();
    field.click().unwrap();
    js(
        tab,
        &format!("document.querySelector('{selector}').value = ''"),
    );
    tab.type_str(text).unwrap();
    tab.press_key("Enter").unwrap();
    tab.wait_until_navigated().unwrap();
}

/// Waits until the tab shows the page at `path` (and has loaded it).
fn on_page(tab: &Tab, path: &str) {
    wait_until(
        tab,
        &format!("the page at {path}"),
        &format!("location.pathname === '{path}' && document.readyState === 'complete'"),
        Duration::from_secs(20),
    );
}

fn machine_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_owned()
}

#[test]
fn the_dashboard_in_a_real_browser() {
    let test = "the_dashboard_in_a_real_browser";
    let Some(chromium) = chromium(test) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let plane = runtime.block_on(Plane::start("dashboard-browser", "dash"));
    let (base, local) = (plane.base(), &plane.local);
    let admin = runtime.block_on(async {
        let square = local.function::<(u64,), u64>("dash", "square");
        let squares = square
            .map((0..40_u64).map(|x| (x,)))
            .collect_vec()
            .await
            .unwrap();
        assert_eq!(squares[39], 39 * 39);
        let shout = local.function::<(String,), usize>("dash", "shout");
        shout
            .remote(("from the dashboard test".into(),))
            .await
            .unwrap();
        shout
            .remote(("<script>document.title='pwned'</script>".into(),))
            .await
            .unwrap();
        local
            .create_token("admin", None, "browser")
            .await
            .unwrap()
            .1
    });

    let browser = Browser::new(
        LaunchOptions::default_builder()
            .path(Some(chromium))
            // As root (CI), Chromium refuses to start sandboxed.
            .sandbox(false)
            .window_size(Some((1280, 1500)))
            .idle_browser_timeout(Duration::from_secs(120))
            .build()
            .unwrap(),
    )
    .unwrap_or_else(|e| panic!("Chromium did not start: {e}"));
    let tab = browser.new_tab().unwrap();
    tab.set_default_timeout(Duration::from_secs(20));

    // Not signed in: the sign-in page. A wrong token is refused there.
    tab.navigate_to(&format!("{base}/dashboard"))
        .unwrap()
        .wait_until_navigated()
        .unwrap();
    on_page(&tab, "/dashboard/sign-in");
    submit(&tab, "#token", "tk-000000000000.wrong");
    assert!(text_of(&tab, ".problem").contains("not valid here"));

    // The admin token, typed into the form: the overview lists the app.
    submit(&tab, "#token", &admin);
    on_page(&tab, "/dashboard");
    let apps = text_of(&tab, "#apps");
    assert!(apps.contains("dash") && apps.contains("running"), "{apps}");
    screenshot(&tab, "dashboard-overview.png");

    // The app's page, through its link.
    tab.wait_for_element("a[href='/dashboard/apps/main/dash']")
        .unwrap()
        .click()
        .unwrap();
    on_page(&tab, "/dashboard/apps/main/dash");
    assert_eq!(text_of(&tab, "#app-name"), "dash");
    let functions = text_of(&tab, "#functions");
    for f in ["square", "shout", "Recorder"] {
        assert!(functions.contains(f), "{f} missing from\n{functions}");
    }
    // Live: the tables refresh, and square's containers are still up.
    wait_until(
        &tab,
        "two refreshes",
        "Number(document.body.dataset.refreshes || 0) >= 2",
        Duration::from_secs(20),
    );
    let containers_of_square = js(
        &tab,
        "Number(document.querySelector('tr[data-function=square] td.containers').textContent)",
    );
    assert!(
        containers_of_square.as_f64().unwrap() >= 1.0,
        "{containers_of_square}"
    );
    let containers = text_of(&tab, "#containers");
    assert!(
        containers.contains("c-") && containers.contains("square"),
        "{containers}"
    );
    assert!(containers.contains("process"), "{containers}");
    assert!(containers.contains(&machine_name()), "{containers}");
    assert!(containers.contains("ready"), "{containers}");

    // Inputs running now show up while the page is open.
    let sleepers = runtime.block_on(async {
        let sleep = local.function::<(u64,), u64>("dash", "sleep_ms");
        let mut calls = Vec::new();
        for _ in 0..2 {
            calls.push(sleep.spawn((4000,)).await.unwrap());
        }
        calls
    });
    wait_until(
        &tab,
        "sleep_ms's inputs running or queued",
        "(() => { const row = document.querySelector('tr[data-function=sleep_ms]'); \
         return !!row && Number(row.querySelector('td.running').textContent) \
         + Number(row.querySelector('td.backlog').textContent) >= 1; })()",
        Duration::from_secs(20),
    );

    // The log tail: what the functions printed, escaped (as text, never
    // as markup that runs).
    wait_until(
        &tab,
        "the functions' log lines",
        "document.getElementById('logs').textContent.includes('stdout says from the dashboard test')",
        Duration::from_secs(20),
    );
    wait_until(
        &tab,
        "the <script> log line as text",
        "document.getElementById('logs').textContent\
         .includes(\"stdout says <script>document.title='pwned'</script>\")",
        Duration::from_secs(20),
    );
    assert_eq!(
        js(&tab, "document.querySelectorAll('#logs script').length"),
        0
    );
    assert_ne!(js(&tab, "document.title"), "pwned");

    // Recent calls.
    if RECENT_CALLS_RECORDED {
        wait_until(
            &tab,
            "square's calls",
            "[...document.querySelectorAll('#calls-rows tr.call')]\
             .some(r => r.textContent.includes('square'))",
            Duration::from_secs(20),
        );
    } else {
        assert!(tab.find_element("#calls").is_ok());
    }
    // Versions: v1, live, with its binary's hash.
    let versions = text_of(&tab, "#versions");
    assert!(
        versions.contains("v1") && versions.contains("live"),
        "{versions}"
    );
    let path = screenshot(&tab, "dashboard-app.png");
    assert!(std::fs::metadata(&path).unwrap().len() > 10_000);

    // Signing out: back to the sign-in page, and the pages are closed.
    tab.wait_for_element(".sign-out button")
        .unwrap()
        .click()
        .unwrap();
    on_page(&tab, "/dashboard/sign-in");
    assert!(text_of(&tab, ".problem").contains("Signed out"));
    tab.navigate_to(&format!("{base}/dashboard/apps/main/dash"))
        .unwrap()
        .wait_until_navigated()
        .unwrap();
    on_page(&tab, "/dashboard/sign-in");

    drop(tab);
    drop(browser);
    runtime.block_on(async {
        for call in sleepers {
            assert_eq!(call.get(None).await.unwrap(), 4000);
        }
        plane.stop().await;
    });
}
