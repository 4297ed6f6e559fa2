//! The web console in a real headless Chromium: on a two-node cluster
//! whose zone learns while workloads talk, every page loads with the admin
//! token handed over in the URL fragment and shows what the API holds
//! (members and leader, the workloads with the unknown one highlighted,
//! the topology picture with the expected vertices, flows with their
//! deciding rule, rules with hit counts, alerts), and accepting a proposed
//! link on the Baseline page writes the rule. A PNG of each page is left
//! in `target/test-artifacts/console/`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use stockade_chaos::netlab::Lab;
use stockade_chaos::nodes::{wait_for, Nodes};

mod common;

use common::browser::{eval, run, screenshot, wait_until, Chromium, Forwarder};
use common::{call, denied_connects, netcheck, Workloads, BIN, SETTLE};

/// The admin API's port inside each lab host.
const API_PORT: u16 = 7480;
/// How long a page has to render (a loaded 2-core machine).
const RENDER: Duration = Duration::from_secs(60);

/// prod learns; web, api, db and vault are identified by their cgroups;
/// a rule denies web → db, and one encrypts web → vault.
fn policy_document() -> String {
    let mut doc = "[[zone]]\nname = \"prod\"\nmode = \"learn\"\n".to_owned();
    for app in ["web", "api", "db", "vault"] {
        doc.push_str(&format!(
            "[[identity]]\nzone = \"prod\"\napp = \"{app}\"\nservice = \"main\"\n\
             [[identity_rule]]\nname = \"{app}\"\n\
             identity = {{ zone = \"prod\", app = \"{app}\", service = \"main\" }}\n\
             match = {{ cgroup_path = \"/{app}\" }}\n"
        ));
    }
    for (to, port, rest) in [
        ("db", 5432, "action = \"deny\"\n"),
        ("vault", 8200, "action = \"allow\"\nencrypt = true\n"),
    ] {
        doc.push_str(&format!(
            "[[rule]]\nfrom = {{ zone = \"prod\", app = \"web\" }}\n\
             to = {{ zone = \"prod\", app = \"{to}\" }}\n\
             protocol = \"tcp\"\nports = [\"{port}\"]\n{rest}"
        ));
    }
    doc
}

/// A webhook nobody answers: alerts stay pending for it.
const SINK: &str = r#"{"name": "siem", "min_severity": "info",
    "target": {"kind": "webhook", "url": "http://127.0.0.1:9/alerts"}}"#;

/// `target/test-artifacts/console`, made empty.
fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("test-artifacts/console");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("the artifacts directory");
    dir
}

/// Goes to page `page` of the console and waits until it has rendered.
fn open(tab: &headless_chrome::Tab, page: &str) {
    run(tab, &format!("location.hash = '#/{page}'"));
    wait_until(
        tab,
        &format!("the {page} page"),
        &format!(
            "document.body.dataset.state === 'ready' && !!document.getElementById('page-{page}')"
        ),
        RENDER,
    );
}

fn page_text(tab: &headless_chrome::Tab) -> String {
    eval(tab, "document.getElementById('main').innerText")
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn every_page_renders_and_accepting_a_proposal_writes_the_rule() {
    let lab = Lab::new(2).expect("a two-host lab");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut nodes = Nodes::init(&lab, Path::new(BIN), dir.path(), &[]).expect("stockade init");
    nodes.form_cluster(2, SETTLE).expect("the cluster forms");
    call(&nodes, 1, "PUT", "/v1/policy", Some(&policy_document()));

    // The static assets need no token; the API still does.
    let root = nodes.api(1, "GET", "/", None, None).expect("curl");
    assert!(
        (300..400).contains(&root.status),
        "/ redirects: {}",
        root.status
    );
    let page = nodes.api(1, "GET", "/console/", None, None).expect("curl");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Stockade console"), "{}", page.body);
    let refused = nodes.api(1, "GET", "/v1/status", None, None).expect("curl");
    assert_eq!(refused.status, 401, "{}", refused.body);

    call(&nodes, 1, "PUT", "/v1/sinks/siem", Some(SINK));

    // api, db and vault listen on host 2; an unregistered binary listens
    // on host 1.
    let api = format!("{}:8080", lab.address(2));
    let db = format!("{}:5432", lab.address(2));
    let vault = format!("{}:8200", lab.address(2));
    let stray_exe = dir.path().join("stray-server");
    std::fs::copy(netcheck(), &stray_exe).expect("copy netcheck");
    let stray = format!("{}:7070", lab.address(1));
    let netcheck = netcheck().to_string_lossy().into_owned();
    let server = |host: usize, app: &str, mode: &str, address: &str| {
        lab.workload(host, app, &netcheck)
            .args([mode, address])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{app}: {e}"))
    };
    let _workloads = Workloads(vec![
        server(2, "api", "serve", &api),
        server(2, "db", "serve", &db),
        server(2, "vault", "echo", &vault),
        lab.workload(1, "stray", &stray_exe.to_string_lossy())
            .args(["serve", &stray])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("stray"),
    ]);
    wait_for("the servers to be published", SETTLE, || {
        let endpoints = call(&nodes, 1, "GET", "/v1/endpoints", None);
        let apps: Vec<&str> = endpoints
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["identity"]["app"].as_str())
            .collect();
        let all = ["api", "db", "vault"].iter().all(|a| apps.contains(a));
        (all.then_some(()), endpoints.to_string())
    })
    .expect("published");
    // web talks to all three while prod learns, until the proposal holds
    // web -> api and the topology the denied and the encrypted edge.
    wait_for("the proposal and the three kinds of edge", SETTLE, || {
        let (denied, text) = denied_connects(&lab, 1, "web", &api, 3);
        assert_eq!(denied, Some(0), "learning allows: {text}");
        let _ = denied_connects(&lab, 1, "web", &db, 1);
        let _ = denied_connects(&lab, 1, "web", &vault, 1);
        let proposal = call(&nodes, 1, "POST", "/v1/baseline/proposal?zone=prod", None);
        let proposed = proposal["rules"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| r["from"]["app"] == "web" && r["to"]["identity"]["app"] == "api");
        let graph = call(&nodes, 1, "GET", "/v1/topology?level=app", None);
        let edge = |to: &str| {
            graph["edges"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|e| e["from"] == "prod/web" && e["to"] == to)
                .cloned()
                .unwrap_or_default()
        };
        let denied = edge("prod/db")["denied"].as_u64() > Some(0);
        let encrypted = edge("prod/vault")["encrypted"] == true;
        (
            (proposed && denied && encrypted).then_some(()),
            format!("{proposal}\n{graph}"),
        )
    })
    .expect("learned");
    wait_for("the stray binary in the inventory", SETTLE, || {
        let rows = call(&nodes, 1, "GET", "/v1/inventory?unknown=true", None);
        let found = rows.to_string().contains("stray-server");
        (found.then_some(()), rows.to_string())
    })
    .expect("inventoried");
    let names: Vec<String> = (1..=2)
        .map(|host| {
            nodes.status(host)["name"]
                .as_str()
                .expect("a name")
                .to_owned()
        })
        .collect();

    let out = artifacts();
    let target: SocketAddr = format!("{}:{API_PORT}", lab.address(1))
        .parse()
        .expect("an address");
    let forwarder = Forwarder::start(&lab.netns(1), target).expect("the forwarder");
    let chromium = Chromium::launch(dir.path());
    let base = format!("http://{}/console/", forwarder.local);

    // Without a token the page asks for one (each tab has a session
    // storage of its own).
    let stranger = chromium.tab();
    stranger.navigate_to(&base).expect("navigate");
    stranger.wait_until_navigated().expect("loaded");
    wait_until(
        &stranger,
        "the token prompt",
        "!document.getElementById('login').hidden",
        RENDER,
    );
    screenshot(&stranger, &out.join("login.png"));
    // A token the node refuses is said to be refused, and asked again.
    run(&stranger, "location.hash = '#token=stk_not.a-token'");
    wait_until(
        &stranger,
        "the refusal",
        "!document.getElementById('login').hidden && \
         document.getElementById('login-message').textContent.includes('refused')",
        RENDER,
    );
    screenshot(&stranger, &out.join("login-refused.png"));
    drop(stranger);

    // The token in the fragment signs in, and leaves the address bar.
    let tab = chromium.tab();
    tab.navigate_to(&format!("{base}#token={}", nodes.admin_token))
        .expect("navigate");
    tab.wait_until_navigated().expect("loaded");
    open(&tab, "status");
    let href = eval(&tab, "location.href");
    assert!(
        !href.to_string().contains("token="),
        "the token left the address bar: {href}"
    );
    let status = page_text(&tab);
    for name in &names {
        assert!(status.contains(name.as_str()), "{name} in:\n{status}");
    }
    assert!(status.contains("leader"), "{status}");
    assert_eq!(
        eval(&tab, "document.querySelectorAll('tr.member').length"),
        2,
        "{status}"
    );
    screenshot(&tab, &out.join("status.png"));

    open(&tab, "inventory");
    let inventory = page_text(&tab);
    assert!(inventory.contains("prod/api/main"), "{inventory}");
    let unknown = eval(
        &tab,
        "[...document.querySelectorAll('tr.workload.unknown')].map(r => r.innerText).join('\\n')",
    );
    assert!(
        unknown.to_string().contains("stray-server"),
        "the unknown binary is highlighted: {unknown}\n{inventory}"
    );
    screenshot(&tab, &out.join("inventory.png"));

    open(&tab, "topology");
    let vertices = |tab: &headless_chrome::Tab| -> Vec<String> {
        let found = eval(
            tab,
            "[...document.querySelectorAll('#topology-svg .vertex text')].map(v => v.textContent)",
        );
        serde_json::from_value(found).unwrap_or_default()
    };
    let app = vertices(&tab);
    for expected in ["prod/web", "prod/api", "prod/db", "prod/vault"] {
        assert!(
            app.iter().any(|v| v == expected),
            "{expected} among {app:?}"
        );
    }
    // Each edge is drawn with its verdict.
    for (to, verdict) in [
        ("prod/api", "allowed"),
        ("prod/db", "denied"),
        ("prod/vault", "encrypted"),
    ] {
        let selector = format!(
            "#topology-svg .edge-group[data-from='prod/web'][data-to='{to}'][data-verdict='{verdict}']"
        );
        assert_eq!(
            eval(&tab, &format!("!!document.querySelector(\"{selector}\")")),
            Value::Bool(true),
            "web -> {to} drawn as {verdict}"
        );
    }
    assert_eq!(
        eval(
            &tab,
            "document.querySelectorAll('#topology-svg .lock').length"
        ),
        1,
        "the encrypted edge carries a lock"
    );
    screenshot(&tab, &out.join("topology.png"));
    run(
        &tab,
        "(() => { const s = document.getElementById('topology-level'); s.value = 'service'; \
         s.dispatchEvent(new Event('change')); })()",
    );
    wait_until(
        &tab,
        "the service level",
        "[...document.querySelectorAll('#topology-svg .vertex text')].some(v => v.textContent === 'prod/web/main')",
        RENDER,
    );
    screenshot(&tab, &out.join("topology-service.png"));

    open(&tab, "flows");
    let rules = eval(
        &tab,
        "[...document.querySelectorAll('tr.flow .rule')].map(r => r.textContent)",
    );
    let rules: Vec<String> = serde_json::from_value(rules).unwrap_or_default();
    assert!(
        rules.iter().any(|r| r == "zone default"),
        "flows name their deciding rule: {rules:?}\n{}",
        page_text(&tab)
    );
    screenshot(&tab, &out.join("flows.png"));

    open(&tab, "rules");
    let builtin = eval(
        &tab,
        "[...document.querySelectorAll('tr.builtin-row')].map(r => r.innerText).join('\\n')",
    );
    assert!(
        builtin.to_string().contains("zone default"),
        "built-in decisions with counts: {builtin}"
    );
    // The deny rule's row counts what it denied.
    let denied = eval(
        &tab,
        "[...document.querySelectorAll('tr.rule-row')]\
           .filter(r => r.cells[2].innerText === 'prod/db/*').map(r => r.cells[8].innerText)",
    );
    assert!(
        denied
            .as_array()
            .is_some_and(|d| d.len() == 1 && d[0] != "0"),
        "the deny rule's hits: {denied}\n{}",
        page_text(&tab)
    );
    screenshot(&tab, &out.join("rules.png"));

    open(&tab, "alerts");
    let delivery = eval(
        &tab,
        "[...document.querySelectorAll('tr.alert-row')].map(r => r.innerText).join('\\n')",
    );
    assert!(
        delivery.to_string().contains("siem: "),
        "each alert's delivery to the sink: {delivery}\n{}",
        page_text(&tab)
    );
    screenshot(&tab, &out.join("alerts.png"));

    // Accept web -> api in the UI: a real click on its Accept button.
    open(&tab, "baseline");
    let accept = "//tr[contains(@class, 'proposed-link')]\
        [.//span[contains(., 'prod/web/main → prod/api/main tcp/8080')]]\
        //button[@data-decision='accept']";
    screenshot(&tab, &out.join("baseline.png"));
    tab.wait_for_xpath_with_custom_timeout(accept, RENDER)
        .unwrap_or_else(|e| panic!("the link's Accept button: {e}\n{}", page_text(&tab)))
        .click()
        .expect("click Accept");
    wait_until(
        &tab,
        "the decision to be written",
        "document.body.dataset.state === 'ready' && document.body.innerText.includes('accepted')",
        RENDER,
    );
    screenshot(&tab, &out.join("baseline-accepted.png"));
    let rules = call(&nodes, 2, "GET", "/v1/rules?consistency=linearizable", None);
    let written = rules.as_array().into_iter().flatten().any(|r| {
        let spec = &r["spec"];
        spec["from"]["app"] == "web"
            && spec["to"]["app"] == "api"
            && spec["action"] == "allow"
            && spec["ports"].to_string().contains("8080")
    });
    assert!(written, "the accepted link is a rule: {rules}");
    let after = page_text(&tab);
    assert!(
        !after.contains("prod/web/main → prod/api/main tcp/8080") || after.contains("covered"),
        "the link is no longer proposed:\n{after}"
    );
    println!("screenshots in {}", out.display());
}
