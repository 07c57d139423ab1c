//! The dashboard's pages, as plain functions from what they show to
//! markup. `maud` escapes every value written into the markup, so app
//! names, function names and log lines can hold anything.
//!
//! The live parts are fragments of the same tables (and single log
//! lines), rendered by the same functions, that the page's script swaps in
//! as they arrive over server-sent events.

use std::time::{Duration, SystemTime};

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::session::Viewer;
use crate::proto::{LogLine, LogStream};
use crate::server::telemetry::RecentCall;

const STYLE: &str = include_str!("style.css");
const SCRIPT: &str = include_str!("live.js");

/// Where the pages are.
pub(crate) const HOME: &str = "/dashboard";
pub(crate) const SIGN_IN: &str = "/dashboard/sign-in";
pub(crate) const SIGN_OUT: &str = "/dashboard/sign-out";

/// The page of app `name` of `environment`.
pub(crate) fn app_path(environment: &str, name: &str) -> String {
    format!("{HOME}/apps/{environment}/{name}")
}

/// One app, as the overview lists it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AppRow {
    pub name: String,
    pub environment: String,
    /// `running` or `stopped`.
    pub state: String,
    /// The live (latest) version.
    pub version: u32,
    pub ephemeral: bool,
    pub containers: u32,
    pub functions: Vec<String>,
    pub created: SystemTime,
}

/// One version of an app.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct VersionRow {
    pub version: u32,
    pub created: SystemTime,
    /// Empty where none was recorded (an ephemeral run).
    pub binary_sha256: String,
    pub functions: Vec<String>,
    /// For a rollback: the version it copies.
    pub rolled_back_from: Option<u32>,
    pub live: bool,
}

/// A function or class of the live version, with its numbers now.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FunctionRow {
    pub name: String,
    /// `function` or `class`.
    pub kind: &'static str,
    pub backlog: u64,
    pub running_inputs: u64,
    pub containers: u32,
}

/// A container of any version of an app.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ContainerRow {
    pub id: String,
    /// The function, or the class and instance, it serves.
    pub function: String,
    pub version: u32,
    /// `starting`, `entering`, `ready` or `stopping`.
    pub state: &'static str,
    pub age: Duration,
    pub running_inputs: usize,
    /// The Docker image tag, or `process`; `None` until it runs.
    pub image: Option<String>,
    pub host: Option<String>,
}

/// The tables of an app page that refresh as it is watched.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LiveTables {
    pub functions: Vec<FunctionRow>,
    pub containers: Vec<ContainerRow>,
    pub calls: Vec<RecentCall>,
}

/// Everything an app page shows.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AppPage {
    pub app: AppRow,
    pub versions: Vec<VersionRow>,
    pub live: LiveTables,
    /// Whether the viewer may follow the app's logs.
    pub logs: bool,
}

/// A page of the dashboard: the bar (for a signed-in viewer), `main`, and,
/// with `live` data attributes set, the script that follows them.
/// `nonce` is the one the response's `Content-Security-Policy` allows.
fn layout(
    title: &str,
    viewer: Option<&Viewer>,
    nonce: &str,
    live: Option<(&str, Option<&str>)>,
    main: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · modal-rs" }
                style nonce=(nonce) { (PreEscaped(STYLE)) }
            }
            body data-live=[live.map(|(tables, _)| tables)]
                data-logs=[live.and_then(|(_, logs)| logs)]
                data-sign-in=(SIGN_IN) {
                header.bar {
                    a.brand href=(HOME) { "modal-rs" }
                    @if let Some(viewer) = viewer {
                        span.who {
                            "Signed in as " code { (viewer.who) }
                            " · " (viewer.scope.as_str())
                            " · " (environment_label(viewer))
                        }
                        form.sign-out method="post" action=(SIGN_OUT) {
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main { (main) }
                @if live.is_some() {
                    script nonce=(nonce) { (PreEscaped(SCRIPT)) }
                }
            }
        }
    }
}

fn environment_label(viewer: &Viewer) -> String {
    match &viewer.environment {
        Some(env) => format!("environment {env}"),
        None => "all environments".to_owned(),
    }
}

/// The sign-in form, with why the last attempt (or session) failed.
pub(crate) fn sign_in(nonce: &str, problem: Option<&str>) -> Markup {
    layout(
        "Sign in",
        None,
        nonce,
        None,
        html! {
            section.card.sign-in {
                h1 { "Sign in" }
                p.muted {
                    "Paste a token of this control plane. An admin token shows every \
                     environment; any other shows its own."
                }
                @if let Some(problem) = problem {
                    p.problem role="alert" { (problem) }
                }
                form method="post" action=(SIGN_IN) {
                    label for="token" { "Token" }
                    input #token type="password" name="token" autocomplete="off"
                        spellcheck="false" required autofocus;
                    button type="submit" { "Sign in" }
                }
            }
        },
    )
}

/// Every app the viewer may see.
pub(crate) fn overview(viewer: &Viewer, nonce: &str, apps: &[AppRow]) -> Markup {
    layout(
        "Apps",
        Some(viewer),
        nonce,
        None,
        html! {
            h1 { "Apps" }
            @if apps.is_empty() {
                p.muted #no-apps {
                    "No apps in " (environment_label(viewer)) " yet: "
                    code { "cargo xtask deploy" } " registers one."
                }
            } @else {
                table #apps {
                    thead { tr {
                        th { "App" } th { "Environment" } th { "State" } th { "Live version" }
                        th { "Kind" } th.num { "Containers" } th { "Functions" } th { "Deployed" }
                    } }
                    tbody {
                        @for app in apps {
                            tr {
                                td { a href=(app_path(&app.environment, &app.name)) { (app.name) } }
                                td { (app.environment) }
                                td { (state_badge(&app.state)) }
                                td { "v" (app.version) }
                                td { (if app.ephemeral { "ephemeral" } else { "deployed" }) }
                                td.num { (app.containers) }
                                td { (some_of(&app.functions, 6)) }
                                td { (timestamp(app.created)) }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// One app: its versions, functions, containers, calls and logs.
pub(crate) fn app(viewer: &Viewer, nonce: &str, page: &AppPage, now: SystemTime) -> Markup {
    let path = app_path(&page.app.environment, &page.app.name);
    let live = format!("{path}/live");
    let logs = format!("{path}/logs");
    layout(
        &page.app.name,
        Some(viewer),
        nonce,
        Some((&live, page.logs.then_some(logs.as_str()))),
        html! {
            p.crumbs { a href=(HOME) { "Apps" } " / " (page.app.environment) }
            h1 #app-name { (page.app.name) }
            p.facts {
                (state_badge(&page.app.state))
                " live version v" (page.app.version)
                " · " (if page.app.ephemeral { "ephemeral" } else { "deployed" })
                " · environment " (page.app.environment)
                span #live-state.muted { " · connecting…" }
            }
            section {
                h2 { "Functions and classes" }
                div.scroll {
                    table #functions {
                        thead { tr {
                            th { "Name" } th { "Kind" } th.num { "Backlog" }
                            th.num { "Running inputs" } th.num { "Containers" }
                        } }
                        tbody #functions-rows { (function_rows(&page.live.functions)) }
                    }
                }
            }
            section {
                h2 { "Containers" }
                table #containers {
                    thead { tr {
                        th { "Container" } th { "Function" } th { "Version" } th { "State" }
                        th.num { "Running inputs" } th { "Age" } th { "Image" } th { "Host" }
                    } }
                    tbody #containers-rows { (container_rows(&page.live.containers)) }
                }
            }
            section {
                h2 { "Recent calls" }
                table #calls {
                    thead { tr {
                        th { "Function" } th { "Kind" } th { "State" } th { "Started" }
                        th.num { "Duration" } th { "Container" }
                    } }
                    tbody #calls-rows { (call_rows(&page.live.calls, now)) }
                }
            }
            section {
                h2 { "Logs" }
                @if page.logs {
                    div #logs.logs role="log" aria-live="polite" {}
                } @else {
                    p.muted #logs-denied {
                        "Following logs needs a token of scope deploy (what "
                        code { "cargo xtask app logs" } " needs)."
                    }
                }
            }
            section {
                h2 { "Versions" }
                table #versions {
                    thead { tr {
                        th { "Version" } th { "Created" } th { "Binary SHA-256" }
                        th { "Functions" } th { "" }
                    } }
                    tbody {
                        @for v in page.versions.iter().rev() {
                            tr {
                                td { "v" (v.version) }
                                td { (timestamp(v.created)) }
                                td { (short_sha(&v.binary_sha256)) }
                                td { (v.functions.join(", ")) }
                                td {
                                    @if v.live { span.badge.ok { "live" } " " }
                                    @if let Some(from) = v.rolled_back_from {
                                        span.badge.note { "rollback to v" (from) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// The functions table's rows.
pub(crate) fn function_rows(rows: &[FunctionRow]) -> Markup {
    html! {
        @if rows.is_empty() {
            tr.empty { td colspan="5" { "No functions." } }
        }
        @for f in rows {
            tr data-function=(f.name) {
                td { (f.name) }
                td { (f.kind) }
                td.num.backlog { (f.backlog) }
                td.num.running { (f.running_inputs) }
                td.num.containers { (f.containers) }
            }
        }
    }
}

/// The containers table's rows.
pub(crate) fn container_rows(rows: &[ContainerRow]) -> Markup {
    html! {
        @if rows.is_empty() {
            tr.empty { td colspan="8" { "No containers: they start with the first input." } }
        }
        @for c in rows {
            tr data-container=(c.id) {
                td { code { (c.id) } }
                td { (c.function) }
                td { "v" (c.version) }
                td { (state_badge(c.state)) }
                td.num { (c.running_inputs) }
                td { (age(c.age)) }
                td { (c.image.as_deref().unwrap_or("—")) }
                td { (c.host.as_deref().unwrap_or("—")) }
            }
        }
    }
}

/// The recent calls table's rows, newest first.
pub(crate) fn call_rows(calls: &[RecentCall], now: SystemTime) -> Markup {
    html! {
        @if calls.is_empty() {
            tr.empty { td colspan="6" { "No calls recorded." } }
        }
        @for c in calls {
            tr.call {
                td { (c.function) }
                td { (c.kind) }
                td { (state_badge(&c.state)) }
                td title=(timestamp(c.started_at)) {
                    (age(now.duration_since(c.started_at).unwrap_or_default())) " ago"
                }
                td.num { (duration(c.duration)) }
                td { code { (c.container_id) } }
            }
        }
    }
}

/// One line of the log tail.
pub(crate) fn log_line(line: &LogLine) -> Markup {
    let stream = match line.stream() {
        LogStream::Stdout => "stdout",
        LogStream::Stderr => "stderr",
    };
    html! {
        div class={ "line " (stream) } {
            span.fn { (line.function) }
            " "
            span.ctr { (line.container_id) }
            " "
            span.text { (line.text) }
        }
    }
}

/// Where the log tail skipped lines it fell behind on.
pub(crate) fn missed_lines(count: u64) -> Markup {
    html! { div.line.missed { "… " (count) " lines missed (the tail fell behind)" } }
}

/// A page saying what went wrong, for a request that reached no page.
pub(crate) fn problem(viewer: Option<&Viewer>, nonce: &str, title: &str, message: &str) -> Markup {
    layout(
        title,
        viewer,
        nonce,
        None,
        html! {
            section.card {
                h1 { (title) }
                p.problem { (message) }
                p { a href=(HOME) { "Back to the apps" } }
            }
        },
    )
}

/// The first `shown` of `names`, and how many more there are.
fn some_of(names: &[String], shown: usize) -> String {
    match names.len().checked_sub(shown) {
        Some(more) if more > 0 => format!("{}, … and {more} more", names[..shown].join(", ")),
        _ => names.join(", "),
    }
}

fn state_badge(state: &str) -> Markup {
    let tone = match state {
        "running" | "ready" | "success" | "succeeded" => "ok",
        "stopped" | "stopping" | "failure" | "failed" | "cancelled" => "bad",
        _ => "note",
    };
    html! { span class={ "badge " (tone) } { (state) } }
}

/// A UTC time to the second, e.g. `2026-10-27 09:30:00 UTC`.
fn timestamp(at: SystemTime) -> String {
    let text = humantime::format_rfc3339_seconds(at).to_string();
    format!("{} UTC", text.trim_end_matches('Z').replacen('T', " ", 1))
}

/// The time of day in UTC, e.g. `09:30:00 UTC`.
pub(crate) fn clock(at: SystemTime) -> String {
    let stamp = timestamp(at);
    stamp
        .split_once(' ')
        .map_or(stamp.clone(), |(_, time)| time.to_owned())
}

/// A whole number of seconds, e.g. `1m 5s`.
fn age(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
}

/// A call's duration, to the millisecond below a minute.
fn duration(d: Duration) -> String {
    if d < Duration::from_secs(60) {
        format!("{:.3} s", d.as_secs_f64())
    } else {
        age(d)
    }
}

fn short_sha(sha: &str) -> Markup {
    html! {
        @if sha.is_empty() {
            span.muted { "—" }
        } @else {
            code title=(sha) { (sha.get(..12).unwrap_or(sha)) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::access::Scope;

    fn viewer() -> Viewer {
        Viewer {
            who: "tk-0123456789ab".into(),
            scope: Scope::Deploy,
            environment: Some("main".into()),
        }
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn app_row(name: &str) -> AppRow {
        AppRow {
            name: name.into(),
            environment: "main".into(),
            state: "running".into(),
            version: 3,
            ephemeral: false,
            containers: 2,
            functions: vec!["square".into(), "Model".into()],
            created: at(1_790_000_000),
        }
    }

    fn page() -> AppPage {
        AppPage {
            app: app_row("shop"),
            versions: vec![
                VersionRow {
                    version: 1,
                    created: at(1_789_000_000),
                    binary_sha256: "ab".repeat(32),
                    functions: vec!["square".into()],
                    rolled_back_from: None,
                    live: false,
                },
                VersionRow {
                    version: 2,
                    created: at(1_790_000_000),
                    binary_sha256: "ab".repeat(32),
                    functions: vec!["square".into()],
                    rolled_back_from: Some(1),
                    live: true,
                },
            ],
            live: LiveTables {
                functions: vec![FunctionRow {
                    name: "square".into(),
                    kind: "function",
                    backlog: 7,
                    running_inputs: 3,
                    containers: 2,
                }],
                containers: vec![ContainerRow {
                    id: "c-42".into(),
                    function: "square".into(),
                    version: 2,
                    state: "ready",
                    age: Duration::from_millis(65_500),
                    running_inputs: 1,
                    image: Some("process".into()),
                    host: Some("builder".into()),
                }],
                calls: vec![RecentCall {
                    app: "shop".into(),
                    function: "square".into(),
                    kind: "map",
                    state: "success".into(),
                    started_at: at(1_790_000_000),
                    duration: Duration::from_millis(1250),
                    container_id: "c-42".into(),
                }],
            },
            logs: true,
        }
    }

    #[test]
    fn the_overview_links_each_app_to_its_page() {
        let html = overview(&viewer(), "n0nce", &[app_row("shop")]).into_string();
        assert!(
            html.contains(r#"<a href="/dashboard/apps/main/shop">shop</a>"#),
            "{html}"
        );
        assert!(html.contains("v3") && html.contains("deployed"), "{html}");
        assert!(html.contains("square, Model"), "{html}");
        let many: Vec<String> = (0..9).map(|k| format!("f{k}")).collect();
        assert_eq!(some_of(&many, 6), "f0, f1, f2, f3, f4, f5, … and 3 more");
        assert_eq!(some_of(&many[..6], 6), "f0, f1, f2, f3, f4, f5");
        assert!(html.contains("2026-09-21 14:13:20 UTC"), "{html}");
        assert!(
            html.contains("Signed in as <code>tk-0123456789ab</code> · deploy · environment main"),
            "{html}"
        );
        // No live parts, so no script; the style carries the nonce.
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains(r#"<style nonce="n0nce">"#), "{html}");
        let empty = overview(&viewer(), "n", &[]).into_string();
        assert!(empty.contains("No apps in environment main yet"), "{empty}");
    }

    #[test]
    fn an_app_page_shows_versions_functions_containers_and_calls() {
        let html = app(&viewer(), "n0nce", &page(), at(1_790_000_010)).into_string();
        assert!(html.contains(r#"<h1 id="app-name">shop</h1>"#), "{html}");
        assert!(
            html.contains(r#"data-live="/dashboard/apps/main/shop/live""#)
                && html.contains(r#"data-logs="/dashboard/apps/main/shop/logs""#),
            "{html}"
        );
        assert!(html.contains(r#"<script nonce="n0nce">"#), "{html}");
        // Functions with their numbers.
        assert!(html.contains(r#"<td class="num backlog">7</td>"#), "{html}");
        assert!(html.contains(r#"<td class="num running">3</td>"#), "{html}");
        // Containers: id, age, image, host.
        assert!(
            html.contains("<code>c-42</code>") && html.contains("1m 5s"),
            "{html}"
        );
        assert!(html.contains("<td>process</td><td>builder</td>"), "{html}");
        // Calls: how long ago, and for how long.
        assert!(
            html.contains("10s ago") && html.contains("1.250 s"),
            "{html}"
        );
        // Versions, newest first, with the rollback and live markers.
        let v2 = html.find("<td>v2</td>").unwrap();
        let v1 = html.find("<td>v1</td>").unwrap();
        assert!(v2 < v1, "{html}");
        assert!(
            html.contains("rollback to v1") && html.contains(">live<"),
            "{html}"
        );
        assert!(
            html.contains(&format!(r#"title="{}""#, "ab".repeat(32))),
            "{html}"
        );
        assert!(html.contains(&format!(">{}<", "ab".repeat(6))), "{html}");
    }

    #[test]
    fn a_viewer_without_deploy_sees_no_log_tail() {
        let mut page = page();
        page.logs = false;
        let html = app(&viewer(), "n", &page, at(0)).into_string();
        assert!(!html.contains("data-logs=\""), "{html}");
        assert!(html.contains("needs a token of scope deploy"), "{html}");
    }

    #[test]
    fn empty_tables_say_so() {
        assert!(function_rows(&[]).into_string().contains("No functions."));
        assert!(container_rows(&[]).into_string().contains("No containers"));
        assert!(
            call_rows(&[], at(0))
                .into_string()
                .contains("No calls recorded.")
        );
    }

    #[test]
    fn everything_shown_is_escaped() {
        let line = LogLine {
            function: "f<b>".into(),
            container_id: "c-1\"".into(),
            stream: LogStream::Stderr as i32,
            text: "<script>alert('x')</script> & more".into(),
        };
        let html = log_line(&line).into_string();
        assert_eq!(
            html,
            "<div class=\"line stderr\"><span class=\"fn\">f&lt;b&gt;</span> \
             <span class=\"ctr\">c-1&quot;</span> <span class=\"text\">&lt;script&gt;alert('x')\
             &lt;/script&gt; &amp; more</span></div>"
        );
        let mut page = page();
        page.app.name = "<img src=x onerror=alert(1)>".into();
        let html = app(&viewer(), "n", &page, at(0)).into_string();
        assert!(!html.contains("<img"), "{html}");
        assert!(
            html.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "{html}"
        );
        let html = problem(None, "n", "Not found", "no app `<x>`").into_string();
        assert!(html.contains("no app `&lt;x&gt;`"), "{html}");
    }

    #[test]
    fn the_sign_in_page_shows_why_and_has_a_password_field() {
        let html = sign_in("n", Some("This token is not valid here")).into_string();
        assert!(
            html.contains(r#"<form method="post" action="/dashboard/sign-in">"#),
            "{html}"
        );
        assert!(html.contains(r#"type="password" name="token""#), "{html}");
        assert!(html.contains("This token is not valid here"), "{html}");
        assert!(!html.contains("Sign out"), "{html}");
    }

    #[test]
    fn numbers_read_as_people_write_them() {
        assert_eq!(timestamp(at(0)), "1970-01-01 00:00:00 UTC");
        assert_eq!(clock(at(3_723)), "01:02:03 UTC");
        assert_eq!(age(Duration::from_millis(3_723_900)), "1h 2m 3s");
        assert_eq!(age(Duration::ZERO), "0s");
        assert_eq!(duration(Duration::from_micros(1500)), "0.002 s");
        assert_eq!(duration(Duration::from_secs(61)), "1m 1s");
        assert!(missed_lines(12).into_string().contains("12 lines missed"));
    }
}
