//! Follow-up for operators: the state in every export format and the filters on it, the
//! admin listener's list and marks (scopes, idempotence, audit), `joinform followup
//! list|mark|stats` as the real binary, and the follow-up metrics.

use serde_json::{Value, json};

use crate::helpers::{TestApp, created_id, json_answer, spawn_app_with};
use crate::metrics::metric_value;
use crate::operator_helpers::{
    add_token, admin_get, age_submission, audit_of, run_cli, stderr, stdout, write_config,
};

/// A sign-up of a person of their own (`local`@example.org) from `country`.
async fn sign_up(app: &TestApp, name: &str, local: &str, country: &str) -> String {
    let body = json!({"name": name, "email": format!("{local}@example.org"),
                      "country": country, "consent": true});
    created_id(app.post_json(&body).await).await
}

/// POST /admin/followup/{id} with a JSON body.
async fn mark(app: &TestApp, token: &str, id: &str, body: &Value) -> reqwest::Response {
    app.client
        .post(format!("{}/admin/followup/{id}", app.admin_address))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// Marks `id` with `state` over HTTP and expects it to change.
async fn mark_ok(app: &TestApp, token: &str, id: &str, state: &str) -> Value {
    let answer: Value = json_answer(
        mark(app, token, id, &json!({ "state": state })).await,
        200,
        &format!("mark {id} {state}"),
    )
    .await;
    assert_eq!(answer["state"], state);
    answer
}

/// The ids of the waiting list, in its order.
fn listed_ids(list: &Value) -> Vec<String> {
    list["followup"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["id"].as_str().unwrap().to_owned())
        .collect()
}

fn csv_rows(bytes: &[u8]) -> Vec<csv::StringRecord> {
    csv::Reader::from_reader(bytes)
        .records()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

#[tokio::test]
async fn exports_carry_the_follow_up_state_and_select_by_it() {
    let mut token = String::new();
    let app = spawn_app_with(|settings| {
        settings.followup.remind_after = "1h".parse().unwrap();
        token = add_token(settings, "head office", &[]);
    })
    .await;
    let contacted = sign_up(&app, "Kari Nordmann", "kari", "NO").await;
    let joined = sign_up(&app, "Ola Nordmann", "ola", "NO").await;
    let waiting = sign_up(&app, "Sven Svensson", "sven", "SE").await;
    let overdue = sign_up(&app, "Dieter Deutsch", "dieter", "DE").await;
    let mut spam = json!({"name": "Bot", "email": "bot@example.net", "country": "NO",
                          "consent": true, "_gotcha": "x"});
    let spam = created_id(app.post_json(&spam.take()).await).await;
    let overdue = age_submission(&app, &overdue, 0, 120);
    let first = mark_ok(&app, &token, &contacted, "contacted").await;
    mark_ok(&app, &token, &joined, "contacted").await;
    mark_ok(&app, &token, &joined, "joined").await;

    let config = write_config(&app);
    let export = |args: Vec<&'static str>| {
        let config = config.clone();
        async move {
            let mut all = vec!["export"];
            all.extend(args);
            let output = run_cli(&config, &all, None).await;
            assert!(output.status.success(), "{all:?}: {}", stderr(&output));
            output.stdout
        }
    };
    let ids = |bytes: &[u8]| sorted(csv_rows(bytes).iter().map(|r| r[0].to_owned()).collect());

    // Every row carries its state, when it changed, by whom and the first contact.
    let rows = csv_rows(&export(vec!["--status", "all"]).await);
    let row = |id: &str| rows.iter().find(|row| &row[0] == id).unwrap().clone();
    let kari = row(&contacted);
    assert_eq!(&kari[11], "contacted");
    assert_eq!(&kari[12], first["contacted_at"].as_str().unwrap());
    assert_eq!(&kari[13], "head office");
    assert_eq!(&kari[14], first["contacted_at"].as_str().unwrap());
    let ola = row(&joined);
    assert_eq!((&ola[11], &ola[13]), ("joined", "head office"));
    assert_eq!(
        &ola[14],
        app.row(&joined).unwrap().contacted_at.unwrap().to_string()
    );
    assert_ne!(
        &ola[12], &ola[14],
        "followup_at moved on, contacted_at stayed"
    );
    let sven = row(&waiting);
    assert_eq!((&sven[11], &sven[13], &sven[14]), ("new", "", ""));
    assert_eq!(
        &sven[12], &sven[1],
        "a new sign-up's state dates from its sign-up"
    );
    let bot = row(&spam);
    assert_eq!((&bot[10], &bot[11], &bot[12]), ("spam", "", ""));

    assert_eq!(
        ids(&export(vec!["--followup", "contacted"]).await),
        [contacted.as_str()]
    );
    assert_eq!(
        ids(&export(vec!["--followup", "joined"]).await),
        [joined.as_str()]
    );
    assert_eq!(
        ids(&export(vec!["--followup", "new"]).await),
        sorted(vec![waiting.clone(), overdue.clone()])
    );
    assert_eq!(ids(&export(vec!["--overdue"]).await), [overdue.as_str()]);
    assert_eq!(
        ids(&export(vec!["--overdue", "--followup", "new", "--excel"]).await[3..]),
        [overdue.as_str()]
    );
    let ndjson = export(vec!["--format", "ndjson", "--followup", "joined"]).await;
    let object: Value = serde_json::from_slice(&ndjson).unwrap();
    assert_eq!(object["followup"], "joined");
    assert_eq!(object["followup_by"], "head office");
    let all: Vec<Value> =
        serde_json::from_slice(&export(vec!["--format", "json", "--status", "spam"]).await)
            .unwrap();
    for column in ["followup", "followup_at", "followup_by", "contacted_at"] {
        assert_eq!(all[0][column], Value::Null, "{column} of spam");
    }
    for (args, says) in [
        (vec!["export", "--followup", "maybe"], "maybe"),
        (vec!["export", "--followup", "Contacted"], "follow-up state"),
        (
            vec!["export", "--overdue", "--followup", "joined"],
            "overdue",
        ),
        (
            vec!["export", "--followup", "new", "--status", "spam"],
            "accepted",
        ),
    ] {
        let output = run_cli(&config, &args, None).await;
        assert!(!output.status.success(), "{args:?}");
        assert!(
            stderr(&output).contains(says),
            "{args:?}: {}",
            stderr(&output)
        );
    }

    // The same over HTTP.
    let got = admin_get(&app, "/admin/submissions?followup=joined", &token).await;
    assert_eq!(ids(&got.bytes().await.unwrap()), [joined.as_str()]);
    let got = admin_get(&app, "/admin/submissions?overdue=true&format=json", &token).await;
    let objects: Vec<Value> = got.json().await.unwrap();
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[0]["id"], overdue.as_str());
    assert_eq!(objects[0]["followup"], "new");
    for (query, says) in [
        ("followup=maybe", "followup"),
        ("overdue=perhaps", "overdue"),
        ("followup=contacted&overdue=true", "overdue"),
    ] {
        let response = admin_get(&app, &format!("/admin/submissions?{query}"), &token).await;
        let body: Value = json_answer(response, 400, query).await;
        assert_eq!(body["error"], "bad_request");
        assert!(
            body["message"].as_str().unwrap().contains(says),
            "{query}: {body}"
        );
    }
    let audited: Vec<Value> = audit_of(&app, "export")
        .iter()
        .map(|row| serde_json::from_str(&row.2).unwrap())
        .collect();
    assert!(
        audited
            .iter()
            .any(|d| d["followup"] == "joined" && d["via"] == "http"),
        "{audited:?}"
    );
    assert!(
        audited
            .iter()
            .any(|d| d["overdue_before"].is_string() && d["via"] == "cli"),
        "{audited:?}"
    );
    app.stop().await;
}

struct Scoped {
    app: TestApp,
    full: String,
    norway: String,
    kari: String,
    sven: String,
    dieter: String,
}

/// Three sign-ups: Sweden's 2 h old (overdue at 90m), Norway's 30 min, the fallback's
/// new; a full token and a Norway one.
async fn spawn_scoped() -> Scoped {
    let (mut full, mut norway) = (String::new(), String::new());
    let app = spawn_app_with(|settings| {
        settings.followup.remind_after = "90m".parse().unwrap();
        full = add_token(settings, "head office", &[]);
        norway = add_token(settings, "Oslo organiser", &["Norway"]);
    })
    .await;
    let kari = sign_up(&app, "Kari Nordmann", "kari", "NO").await;
    let sven = sign_up(&app, "Sven Svensson", "sven", "SE").await;
    let dieter = sign_up(&app, "Dieter Deutsch", "dieter", "DE").await;
    let sven = age_submission(&app, &sven, 0, 120);
    let kari = age_submission(&app, &kari, 0, 30);
    Scoped {
        app,
        full,
        norway,
        kari,
        sven,
        dieter,
    }
}

#[tokio::test]
async fn admin_followup_lists_waiting_sign_ups_oldest_first_within_the_token_scope() {
    let s = spawn_scoped().await;
    let list = |query: &'static str, token: &str| {
        let (app, token) = (&s.app, token.to_owned());
        async move {
            let response = admin_get(app, &format!("/admin/followup{query}"), &token).await;
            assert_eq!(response.headers()["cache-control"], "no-store");
            json_answer::<Value>(response, 200, query).await
        }
    };
    let all = list("", &s.full).await;
    assert_eq!(listed_ids(&all), [s.sven.as_str(), &s.kari, &s.dieter]);
    let sven = &all["followup"][0];
    assert_eq!(sven["section"], "Sweden");
    assert_eq!(sven["country"], "SE");
    assert_eq!(sven["first_name"], "Sven");
    assert_eq!(sven["state"], "new");
    assert_eq!(sven["overdue"], true);
    assert_eq!(
        sven["signed_up_at"],
        s.app.row(&s.sven).unwrap().created_at.to_string()
    );
    let age = sven["age_seconds"].as_u64().unwrap();
    assert!((7200..7260).contains(&age), "{age}");
    assert_eq!(all["followup"][1]["overdue"], false);
    let keys: Vec<&String> = sven.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 8, "no contact details: {keys:?}");

    assert_eq!(
        listed_ids(&list("?overdue=true", &s.full).await),
        [s.sven.as_str()]
    );
    assert_eq!(
        listed_ids(&list("?section=Norway", &s.full).await),
        [s.kari.as_str()]
    );
    assert_eq!(listed_ids(&list("", &s.norway).await), [s.kari.as_str()]);
    assert_eq!(
        listed_ids(&list("?overdue=true", &s.norway).await),
        Vec::<String>::new()
    );
    mark_ok(&s.app, &s.full, &s.kari, "contacted").await;
    assert_eq!(
        listed_ids(&list("", &s.full).await),
        [s.sven.as_str(), &s.dieter]
    );

    for (query, token, status) in [
        ("?section=Sweden", &s.norway, 403),
        ("?colour=red", &s.full, 400),
        ("?overdue=perhaps", &s.full, 400),
        ("", &"wrong".to_owned(), 401),
    ] {
        let response = admin_get(&s.app, &format!("/admin/followup{query}"), token).await;
        assert_eq!(response.status(), status, "{query}");
    }
    let public = s.app.client.get(s.app.url("/admin/followup")).send().await;
    assert_eq!(public.unwrap().status(), 404, "not on the public listener");
    s.app.stop().await;
}

#[tokio::test]
async fn admin_marks_are_idempotent_keep_the_first_contact_and_are_audited_by_token() {
    let s = spawn_scoped().await;
    let app = &s.app;
    let first = mark_ok(app, &s.full, &s.kari, "contacted").await;
    assert_eq!(first["id"], s.kari.as_str());
    assert_eq!(first["changed"], true);
    let contacted_at = first["contacted_at"].as_str().unwrap().to_owned();

    let again = mark_ok(app, &s.full, &s.kari, "contacted").await;
    assert_eq!(again["changed"], false, "idempotent");
    assert_eq!(again["contacted_at"], contacted_at.as_str());

    // A form works as well as JSON, and a scoped token may mark its own section.
    let response = app
        .client
        .post(format!("{}/admin/followup/{}", app.admin_address, s.kari))
        .bearer_auth(&s.norway)
        .form(&[("state", "joined")])
        .send()
        .await
        .unwrap();
    let joined: Value = json_answer(response, 200, "form body").await;
    assert_eq!(joined["state"], "joined");
    assert_eq!(joined["changed"], true);
    assert_eq!(
        joined["contacted_at"],
        contacted_at.as_str(),
        "the first contact is kept"
    );
    let row = app.row(&s.kari).unwrap();
    assert_eq!(row.followup_by.as_deref(), Some("Oslo organiser"));
    assert_eq!(row.contacted_at.unwrap().to_string(), contacted_at);

    let audited = audit_of(app, "followup");
    let seen: Vec<(String, Value)> = audited
        .iter()
        .map(|row| (row.0.clone(), serde_json::from_str(&row.2).unwrap()))
        .collect();
    assert_eq!(
        seen.len(),
        2,
        "one entry per change, none for the repeat: {seen:?}"
    );
    assert_eq!(seen[0].0, "head office");
    assert_eq!(
        seen[0].1,
        json!({"id": s.kari, "from": "new", "to": "contacted"})
    );
    assert_eq!(seen[1].0, "Oslo organiser");
    assert_eq!(seen[1].1["to"], "joined");

    // Another section's sign-up does not exist for a scoped token, and is unchanged.
    let hidden = mark(app, &s.norway, &s.sven, &json!({"state": "contacted"})).await;
    let body: Value = json_answer(hidden, 404, "out of scope").await;
    assert_eq!(body["error"], "not_found");
    assert_eq!(app.row(&s.sven).unwrap().followup.unwrap().as_str(), "new");
    let mut bot = json!({"name": "Bot", "email": "bot@example.net", "country": "NO",
                         "consent": true, "_gotcha": "x"});
    let spam = created_id(app.post_json(&bot.take()).await).await;
    let unknown = uuid::Uuid::now_v7().to_string();
    for (id, reason) in [
        (spam.as_str(), "spam is not followed up"),
        (unknown.as_str(), "an id nobody has"),
        ("not-an-id", "text that is no id"),
    ] {
        let response = mark(app, &s.full, id, &json!({"state": "contacted"})).await;
        assert_eq!(response.status(), 404, "{reason}");
    }
    let cases: [(reqwest::RequestBuilder, &str); 5] = [
        (json_body(&s, &s.dieter, &json!({"state": "new"})), "new"),
        (
            json_body(&s, &s.dieter, &json!({"state": "maybe"})),
            "maybe",
        ),
        (json_body(&s, &s.dieter, &json!({"state": 1})), "state"),
        (
            json_body(&s, &s.dieter, &json!({"state": "joined", "note": "x"})),
            "state",
        ),
        (json_body(&s, &s.dieter, &json!({})), "state"),
    ];
    for (request, says) in cases {
        let body: Value = json_answer(request.send().await.unwrap(), 400, says).await;
        assert_eq!(body["field"], "state", "{body}");
        assert!(body["message"].as_str().unwrap().contains(says), "{body}");
    }
    let no_token = app
        .client
        .post(format!("{}/admin/followup/{}", app.admin_address, s.dieter))
        .json(&json!({"state": "contacted"}))
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), 401);
    assert_eq!(
        app.row(&s.dieter).unwrap().followup.unwrap().as_str(),
        "new"
    );
    s.app.stop().await;
}

/// POST /admin/followup/{id} with a JSON body, by the full token, not yet sent.
fn json_body(s: &Scoped, id: &str, body: &Value) -> reqwest::RequestBuilder {
    s.app
        .client
        .post(format!("{}/admin/followup/{id}", s.app.admin_address))
        .bearer_auth(&s.full)
        .json(body)
}

/// The whitespace-separated cells of the `followup stats` line that starts with `name`
/// (a section's 30-day line), and of the line after it (its 90-day line).
fn stats_lines(text: &str, name: &str) -> (Vec<String>, Vec<String>) {
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|line| line.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no line for {name} in:\n{text}"));
    let cells = |line: &str| line.split_whitespace().map(str::to_owned).collect();
    (cells(lines[at]), cells(lines[at + 1]))
}

#[tokio::test]
async fn followup_list_mark_and_stats_on_the_command_line() {
    let app = spawn_app_with(|settings| {
        settings.followup.remind_after = "3h".parse().unwrap();
    })
    .await;
    let norway = [
        sign_up(&app, "Kari Nordmann", "kari", "NO").await,
        sign_up(&app, "Ola Nordmann", "ola", "NO").await,
        sign_up(&app, "Per Hansen", "per", "NO").await,
    ];
    let sven = sign_up(&app, "Sven Svensson", "sven", "SE").await;
    let config = write_config(&app);
    let cli = |args: Vec<String>| {
        let config = config.clone();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run_cli(&config, &args, None).await
        }
    };
    let args = |words: &[&str]| words.iter().map(|w| (*w).to_owned()).collect::<Vec<_>>();

    for id in &norway {
        let output = cli(args(&["followup", "mark", id, "contacted"])).await;
        assert!(output.status.success(), "{}", stderr(&output));
        assert_eq!(stdout(&output), format!("{id}: new -> contacted\n"));
    }
    let again = cli(args(&["followup", "mark", &norway[0], "contacted"])).await;
    assert!(again.status.success());
    assert_eq!(
        stdout(&again),
        format!("{}: already contacted\n", norway[0])
    );
    let row = app.row(&norway[0]).unwrap();
    assert_eq!(row.followup_by.as_deref(), Some("cli"));
    let contacted_at = row.contacted_at.unwrap();
    let audited = audit_of(&app, "followup");
    assert_eq!(audited.len(), 3);
    assert!(audited.iter().all(|row| row.0 == "cli"));

    let unknown = uuid::Uuid::now_v7().to_string();
    for (words, says) in [
        (args(&["followup", "mark", &norway[0], "new"]), "`new`"),
        (args(&["followup", "mark", &norway[0], "maybe"]), "maybe"),
        (
            args(&["followup", "mark", &unknown, "joined"]),
            "no accepted sign-up",
        ),
        (
            args(&["followup", "mark", "nonsense", "joined"]),
            "no accepted sign-up",
        ),
    ] {
        let output = cli(words.clone()).await;
        assert!(!output.status.success(), "{words:?}");
        assert!(
            stderr(&output).contains(says),
            "{words:?}: {}",
            stderr(&output)
        );
    }

    // First contacts 1 h, 2 h and 5 h after the sign-ups (the marks came first, so the
    // sign-ups move back); Sweden's sign-up waits 5 h, uncontacted.
    let norway: Vec<String> = norway
        .iter()
        .zip([60, 120, 300])
        .map(|(id, minutes)| age_submission(&app, id, 0, minutes))
        .collect();
    let sven = age_submission(&app, &sven, 0, 300);
    let joined = cli(args(&["followup", "mark", &norway[2], "joined"])).await;
    assert_eq!(
        stdout(&joined),
        format!("{}: contacted -> joined\n", norway[2])
    );
    assert_eq!(
        app.row(&norway[0]).unwrap().contacted_at.unwrap(),
        contacted_at
    );

    let list = cli(args(&["followup", "list"])).await;
    assert!(list.status.success(), "{}", stderr(&list));
    let text = stdout(&list);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["id", "section", "country", "signed", "up", "age", "state"]
    );
    let cells: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(cells[..3], [sven.as_str(), "Sweden", "SE"]);
    assert_eq!(cells[4..], ["5h", "new", "(overdue)"]);
    assert_eq!(lines[2], "1 sign-up(s) waiting for a first contact");
    assert!(
        !text.contains("sven@") && !text.contains("Svensson"),
        "{text}"
    );
    let overdue = stdout(&cli(args(&["followup", "list", "--overdue"])).await);
    assert!(overdue.contains(&sven), "{overdue}");
    let norway_only = cli(args(&["followup", "list", "--section", "Norway"])).await;
    assert!(stdout(&norway_only).ends_with("0 sign-up(s) waiting for a first contact\n"));
    assert_eq!(
        stderr(&norway_only),
        "",
        "a configured section needs no note"
    );
    // A name no section has (here, the wrong case) still runs, with a note naming the
    // configured ones, so a typo does not read as "nobody waiting".
    for command in [
        args(&["followup", "list", "--section", "norway"]),
        args(&["export", "--section", "norway"]),
    ] {
        let typo = cli(command.clone()).await;
        assert!(typo.status.success(), "{command:?}: {}", stderr(&typo));
        let note = stderr(&typo);
        assert!(
            note.contains("no configured section is named `norway`") && note.contains("Norway"),
            "{command:?}: {note}"
        );
    }

    let stats = cli(args(&["followup", "stats"])).await;
    assert!(stats.status.success(), "{}", stderr(&stats));
    let text = stdout(&stats);
    // window, sign-ups, contacted, median, p90, in 3h, open, overdue.
    let (month, quarter) = stats_lines(&text, "Norway");
    assert_eq!(
        month[1..],
        ["30d", "3", "3", "2h", "5h", "67%", "2", "0"],
        "{text}"
    );
    assert_eq!(quarter, ["90d", "3", "3", "2h", "5h", "67%"], "{text}");
    let (month, _) = stats_lines(&text, "Sweden");
    assert_eq!(
        month[1..],
        ["30d", "1", "0", "-", "-", "0%", "1", "1"],
        "{text}"
    );
    let (month, _) = stats_lines(&text, "International");
    assert_eq!(
        month[1..],
        ["30d", "0", "0", "-", "-", "-", "0", "0"],
        "{text}"
    );
    let (month, quarter) = stats_lines(&text, "total");
    assert_eq!(
        month[1..],
        ["30d", "4", "3", "2h", "5h", "50%", "3", "1"],
        "{text}"
    );
    assert_eq!(quarter, ["90d", "4", "3", "2h", "5h", "50%"], "{text}");
    app.stop().await;
}

#[tokio::test]
async fn followup_metrics_are_read_from_the_database_whoever_marked() {
    let mut token = String::new();
    let app = spawn_app_with(|settings| {
        settings.server.public_url = Some("https://join.example.org".into());
        settings.followup.remind_after = "1h".parse().unwrap();
        token = add_token(settings, "head office", &[]);
    })
    .await;
    let kari = sign_up(&app, "Kari Nordmann", "kari", "NO").await;
    let ola = sign_up(&app, "Ola Nordmann", "ola", "NO").await;
    let sven = sign_up(&app, "Sven Svensson", "sven", "SE").await;
    mark_ok(&app, &token, &kari, "contacted").await;
    age_submission(&app, &kari, 0, 120);
    age_submission(&app, &sven, 0, 120);
    let scrape = |app: &TestApp| {
        let url = format!("{}/metrics", app.admin_address);
        let client = app.client.clone();
        async move { client.get(url).send().await.unwrap().text().await.unwrap() }
    };
    let text = scrape(&app).await;
    let value = |text: &str, series: &str| {
        metric_value(text, series).unwrap_or_else(|| panic!("{series} missing from:\n{text}"))
    };
    for (series, expected) in [
        (
            r#"joinform_followup_open{section="Norway",state="new"}"#,
            1.0,
        ),
        (
            r#"joinform_followup_open{section="Norway",state="contacted"}"#,
            1.0,
        ),
        (
            r#"joinform_followup_open{section="Sweden",state="new"}"#,
            1.0,
        ),
        (
            r#"joinform_followup_open{section="Sweden",state="contacted"}"#,
            0.0,
        ),
        (
            r#"joinform_followup_open{section="International",state="new"}"#,
            0.0,
        ),
        (r#"joinform_followup_overdue{section="Norway"}"#, 0.0),
        (r#"joinform_followup_overdue{section="Sweden"}"#, 1.0),
        (
            r#"joinform_followup_time_to_first_contact_seconds_count{section="Norway"}"#,
            1.0,
        ),
        (
            r#"joinform_followup_time_to_first_contact_seconds_bucket{le="7200.0",section="Norway"}"#,
            0.0,
        ),
        (
            r#"joinform_followup_time_to_first_contact_seconds_bucket{le="14400.0",section="Norway"}"#,
            1.0,
        ),
        (
            r#"joinform_followup_time_to_first_contact_seconds_bucket{le="+Inf",section="Norway"}"#,
            1.0,
        ),
        (
            r#"joinform_followup_time_to_first_contact_seconds_count{section="Sweden"}"#,
            0.0,
        ),
    ] {
        assert_eq!(value(&text, series), expected, "{series} in:\n{text}");
    }
    let sum = value(
        &text,
        r#"joinform_followup_time_to_first_contact_seconds_sum{section="Norway"}"#,
    );
    assert!((7200.0..7260.0).contains(&sum), "{sum}");
    assert!(
        text.lines()
            .any(|l| l == "# TYPE joinform_followup_time_to_first_contact_seconds histogram"),
        "{text}"
    );

    // A mark by the command line, then a restart: both are in the next scrapes.
    let config = write_config(&app);
    let output = run_cli(&config, &["followup", "mark", &ola, "contacted"], None).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let text = scrape(&app).await;
    assert_eq!(
        value(
            &text,
            r#"joinform_followup_open{section="Norway",state="new"}"#
        ),
        0.0
    );
    let app = app.restart().await;
    let text = scrape(&app).await;
    assert_eq!(
        value(
            &text,
            r#"joinform_followup_open{section="Norway",state="contacted"}"#
        ),
        2.0
    );
    assert_eq!(
        value(
            &text,
            r#"joinform_followup_time_to_first_contact_seconds_count{section="Norway"}"#
        ),
        2.0
    );
    app.stop().await;
}

#[tokio::test]
async fn without_follow_up_there_is_no_overdue_gauge_but_the_rest_is_there() {
    let app = spawn_app_with(|_| {}).await;
    sign_up(&app, "Kari Nordmann", "kari", "NO").await;
    let text = app
        .client
        .get(format!("{}/metrics", app.admin_address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!text.contains("joinform_followup_overdue"), "{text}");
    assert_eq!(
        metric_value(
            &text,
            r#"joinform_followup_open{section="Norway",state="new"}"#
        ),
        Some(1.0)
    );
    app.stop().await;
}
