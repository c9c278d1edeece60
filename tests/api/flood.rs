//! Flood defence (issue 17), as an attacker would try it: many addresses on loopback,
//! each under its own limit, together far over the global ceiling, posting plausible
//! sign-ups without a proof; real visitors in the same seconds, with the form page's
//! script (a solved challenge) and as a plain HTML form. How fast the server is under
//! a flood is the load benchmark's business (`cargo bench --bench load -- flood`),
//! never a timed assertion here.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use joinform::config::{RateLimitSettings, Settings};
use joinform::domain::SubmissionStatus;
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::helpers::{TestApp, spawn_app_with};
use crate::proof_of_work::solve;
use crate::spam::client_from;

/// Source addresses of the flood, one post each: 127.1.x.y.
const BOTS: u32 = 1_200;
/// The seconds the bots' posts are spread over.
const FLOOD: Duration = Duration::from_secs(3);
/// Real visitors in the same seconds, each from an address of its own (127.2.0.x);
/// every other one with the form page's script.
const VISITORS: u32 = 80;
const GLOBAL_PER_SECOND: u32 = 10;
const BASELINE_PER_MINUTE: u32 = 20;
/// Bot requests in flight at once: each holds a socket at both ends (the server runs
/// in this process), well under the usual 1,024 file descriptors. More would not add
/// pressure but a queue: on a busy machine the debug build's one worker then reads some
/// requests only after actix's 5-second `client_request_timeout`, and answers 408.
const BOTS_IN_FLIGHT: usize = 64;

// ≥ 1,000 addresses at ≥ 10× the ceiling, as issue 17 asks of this test.
const _: () = assert!(BOTS >= 1_000);
const _: () = assert!(BOTS as u64 >= 10 * GLOBAL_PER_SECOND as u64 * FLOOD.as_secs());

/// The shipped per-address limits, a low global ceiling and baseline, and challenges
/// easy enough for the solver in a debug build even at their peak.
fn flood_settings(settings: &mut Settings) {
    settings.rate_limit = RateLimitSettings {
        global_per_second: GLOBAL_PER_SECOND,
        ..RateLimitSettings::default()
    };
    settings.spam.pow_baseline_per_minute = BASELINE_PER_MINUTE;
    settings.spam.pow_maxnumber = 1_000;
    settings.spam.pow_peak_maxnumber = 20_000;
    settings.spam.min_fill = "1s".parse().unwrap();
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Who {
    Bot,
    /// A visitor whose page's script solved a challenge and posts for a JSON answer.
    Script,
    /// A visitor posting the plain HTML form, answered with a redirect.
    PlainForm,
}

/// One post and its answer: the status (`None`: no answer at all) and, for a JSON
/// answer, the id it acknowledged.
#[derive(Debug)]
struct Answer {
    who: Who,
    email: String,
    status: Option<u16>,
    id: Option<String>,
    /// Whether the visitor's page carried a form token (bots fetch none).
    had_token: bool,
    /// Why no answer came.
    error: Option<String>,
}

impl Answer {
    fn succeeded(&self) -> bool {
        self.status
            .is_some_and(|status| (200..400).contains(&status))
    }
}

#[tokio::test]
async fn a_flood_from_many_addresses_is_held_while_real_visitors_get_through() {
    let app = Arc::new(spawn_app_with(flood_settings).await);
    let started = Instant::now();
    let slots = Arc::new(Semaphore::new(BOTS_IN_FLIGHT));
    let mut tasks = Vec::new();
    for n in 0..BOTS {
        let at = started + FLOOD.mul_f64(f64::from(n) / f64::from(BOTS));
        let (app, slots) = (Arc::clone(&app), Arc::clone(&slots));
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            let _slot = slots.acquire_owned().await.unwrap();
            bot(&app, n).await
        }));
    }
    for n in 0..VISITORS {
        let at = started + FLOOD.mul_f64(f64::from(n) / f64::from(VISITORS));
        let app = Arc::clone(&app);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            visitor(&app, n).await
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    let took = started.elapsed();

    let rows: HashMap<String, (String, SubmissionStatus)> = app
        .rows()
        .into_iter()
        .map(|row| (row.email.clone(), (row.id.to_string(), row.status)))
        .collect();
    let notified = notified_ids(&app);
    let of = |who: Who| answers.iter().filter(move |answer| answer.who == who);
    let status_of = |answer: &Answer| rows.get(&answer.email).map(|(_, status)| *status);

    // No 5xx, and nothing acknowledged is lost: a JSON answer's id is the stored row's,
    // a redirect's sign-up is found by its (unique) address.
    for answer in &answers {
        assert!(
            answer.status.is_none_or(|status| status < 500),
            "{answer:?}"
        );
        if answer.succeeded() {
            let (id, _) = rows
                .get(&answer.email)
                .unwrap_or_else(|| panic!("acknowledged but not stored: {answer:?}"));
            if let Some(acknowledged) = &answer.id {
                assert_eq!(acknowledged, id, "{answer:?}");
            }
        }
    }

    let bots_answered = of(Who::Bot).filter(|a| a.succeeded()).count();
    let bots_held = of(Who::Bot)
        .filter(|a| status_of(a) == Some(SubmissionStatus::Held))
        .count();
    let bots_notified = of(Who::Bot)
        .filter(|a| {
            rows.get(&a.email)
                .is_some_and(|(id, _)| notified.contains(id))
        })
        .count();
    let bots_accepted = of(Who::Bot)
        .filter(|a| status_of(a) == Some(SubmissionStatus::Accepted))
        .count();
    let served = |who: Who| {
        of(who)
            .filter(|a| {
                a.succeeded()
                    && matches!(
                        status_of(a),
                        Some(SubmissionStatus::Accepted | SubmissionStatus::Held)
                    )
            })
            .count()
    };
    let (script_served, plain_served) = (served(Who::Script), served(Who::PlainForm));
    let plain_held = of(Who::PlainForm)
        .filter(|a| status_of(a) == Some(SubmissionStatus::Held))
        .count();
    let without_token = answers
        .iter()
        .filter(|a| a.who != Who::Bot && !a.had_token)
        .count();
    let unanswered = answers.iter().filter(|a| a.status.is_none()).count();
    let mut outcomes: BTreeMap<(Who, String), usize> = BTreeMap::new();
    for answer in &answers {
        let outcome = answer.status.map_or_else(
            || answer.error.clone().unwrap_or_default(),
            |status| status.to_string(),
        );
        *outcomes.entry((answer.who, outcome)).or_default() += 1;
    }
    eprintln!("flood: answers by who and status: {outcomes:?}");
    eprintln!(
        "flood: {BOTS} bots from {BOTS} addresses over {FLOOD:?} ({} a second, {}× the \
         ceiling of {GLOBAL_PER_SECOND}/s): {bots_answered} answered 2xx/3xx, \
         {bots_held} held, {bots_accepted} accepted, {bots_notified} notified \
         (baseline {BASELINE_PER_MINUTE}/min); real visitors: {script_served}/{} with \
         the script and {plain_served}/{} with the plain form served and stored, \
         {plain_held} plain-form ones held, {without_token} pages without a token; \
         {unanswered} posts unanswered; {took:.1?} in all",
        u64::from(BOTS) / FLOOD.as_secs(),
        u64::from(BOTS) / FLOOD.as_secs() / u64::from(GLOBAL_PER_SECOND),
        of(Who::Script).count(),
        of(Who::PlainForm).count(),
    );

    // (a) ≥ 99 % of real visitors answered and stored (of 80: every one).
    let real = of(Who::Script).count() + of(Who::PlainForm).count();
    assert!(
        (script_served + plain_served) * 100 >= real * 99,
        "{script_served} + {plain_served} of {real} real visitors served"
    );
    // A solved challenge gets through the flood: accepted, so notified.
    for answer in of(Who::Script) {
        assert_eq!(
            status_of(answer),
            Some(SubmissionStatus::Accepted),
            "{answer:?}"
        );
        let (id, _) = &rows[&answer.email];
        assert!(notified.contains(id), "{answer:?}");
    }
    // (b) what proved nothing is notified no more than the baseline a minute, whoever
    // sent it (the test lasts under a minute: one started minute).
    let minutes = took.as_secs().div_ceil(60).max(1);
    let allowed = u64::from(BASELINE_PER_MINUTE) * minutes;
    assert!(
        bots_notified as u64 <= allowed,
        "{bots_notified} bots notified"
    );
    let unproved_notified = answers
        .iter()
        .filter(|a| a.who != Who::Script)
        .filter(|a| {
            rows.get(&a.email)
                .is_some_and(|(id, _)| notified.contains(id))
        })
        .count();
    assert!(
        unproved_notified as u64 <= allowed,
        "{unproved_notified} sign-ups without a proof notified"
    );
    // The door stayed open: each address was under its own limit, so no bot saw 429.
    assert_eq!(bots_answered, BOTS as usize, "every bot's post was taken");

    drop(answers);
    Arc::into_inner(app)
        .expect("every task is done")
        .stop()
        .await;
}

/// The ids of the submissions a notification was queued for.
fn notified_ids(app: &TestApp) -> HashSet<String> {
    let connection = rusqlite::Connection::open(&app.db_path).unwrap();
    let mut statement = connection
        .prepare("SELECT submission_id FROM outbox WHERE kind = 'notification'")
        .unwrap();
    statement
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Bot `n` from 127.1.x.y: one plausible sign-up for the Norwegian section, without a
/// token or a proof; JSON from the even ones, a plain form from the odd ones.
async fn bot(app: &TestApp, n: u32) -> Answer {
    let [_, _, high, low] = (n + 1).to_be_bytes();
    let client = client_from(&format!("127.1.{high}.{low}"));
    let email = format!("fan{n}@flood.example.com");
    let request = client.post(app.url("/join"));
    let request = if n.is_multiple_of(2) {
        request.json(&serde_json::json!({
            "name": format!("Ola Nordmann {}", name_suffix(n)),
            "email": email,
            "country": "NO",
            "consent": true,
        }))
    } else {
        request.header("Accept", "text/html").form(&[
            ("name", format!("Kari Nordmann {}", name_suffix(n)).as_str()),
            ("email", email.as_str()),
            ("country", "NO"),
            ("consent", "on"),
        ])
    };
    answer(Who::Bot, email, false, request).await
}

/// A surname from `n` without digits (a name with digits scores as spam), so that each
/// bot looks like a different person.
fn name_suffix(n: u32) -> String {
    format!("{n:o}")
        .chars()
        .map(|digit| char::from(b'a' + digit as u8 - b'0'))
        .collect()
}

/// Real visitor `n` from 127.2.0.x: loads the form page, fills it in, and posts it
/// once the token is usable, as the form page's script would (with a solved challenge,
/// for a JSON answer) or, every other one, as a plain HTML form.
async fn visitor(app: &TestApp, n: u32) -> Answer {
    // A connection per request: one kept while the challenge is solved may pass the
    // server's 5-second keep-alive and be closed just as the post goes out on it (a
    // browser retries on a fresh connection then; reqwest reports an error).
    let client = reqwest::Client::builder()
        .local_address(IpAddr::from([127, 2, 0, u8::try_from(n + 1).unwrap()]))
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let who = if n.is_multiple_of(2) {
        Who::Script
    } else {
        Who::PlainForm
    };
    let email = format!("visitor{n}@example.org");
    let page = client
        .get(app.url("/"))
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();
    let loaded = tokio::time::Instant::now();
    assert_eq!(page.status(), 200);
    let token = page_token(&page.text().await.unwrap());
    let mut fields = vec![
        ("_token", token.clone()),
        ("_lang", "en".to_owned()),
        ("name", "Ingrid Visitor".to_owned()),
        ("email", email.clone()),
        ("country", "NO".to_owned()),
        ("consent", "on".to_owned()),
    ];
    let accept = match who {
        Who::Script => {
            let challenge: Value = client
                .get(app.url("/join/challenge"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let solved = tokio::task::spawn_blocking(move || altcha_field(&challenge))
                .await
                .unwrap();
            fields.push(("altcha", solved));
            "application/json"
        }
        _ => "text/html",
    };
    // The script waits a quarter of a second past the token's usable time.
    tokio::time::sleep_until(loaded + Duration::from_millis(1_250)).await;
    let request = client
        .post(app.url("/join"))
        .header("Accept", accept)
        .form(&fields);
    answer(who, email, !token.is_empty(), request).await
}

async fn answer(
    who: Who,
    email: String,
    had_token: bool,
    request: reqwest::RequestBuilder,
) -> Answer {
    let response = match request.send().await {
        Ok(response) => response,
        Err(error) => {
            return Answer {
                who,
                email,
                status: None,
                id: None,
                had_token,
                error: Some(format!("{error:?}")),
            };
        }
    };
    let status = response.status().as_u16();
    let id = if status == 201 {
        let body: Value = response.json().await.unwrap();
        body["id"].as_str().map(str::to_owned)
    } else {
        None
    };
    Answer {
        who,
        email,
        status: Some(status),
        id,
        had_token,
        error: None,
    }
}

/// The `_token` hidden field's value in the form page (empty when the page came
/// without one).
fn page_token(page: &str) -> String {
    let start = page
        .find(r#"name=_token value=""#)
        .expect("the page has a _token field")
        + r#"name=_token value=""#.len();
    let end = start + page[start..].find('"').unwrap();
    page[start..end].to_owned()
}

/// The `altcha` field for a challenge, solved.
fn altcha_field(challenge: &Value) -> String {
    let payload = serde_json::json!({
        "algorithm": challenge["algorithm"],
        "challenge": challenge["challenge"],
        "number": solve(challenge),
        "salt": challenge["salt"],
        "signature": challenge["signature"],
    });
    base64::engine::general_purpose::STANDARD.encode(payload.to_string())
}

/// Difficulty rises with the rate of sign-ups, up to the peak. Falling back takes the
/// gauge's 60-second window, too long for this suite: `src/spam/flood.rs` tests it on
/// a clock of its own.
#[tokio::test]
async fn challenges_grow_harder_as_sign_ups_come_faster_up_to_the_peak() {
    let app = spawn_app_with(|settings| {
        settings.spam.pow_baseline_per_minute = BASELINE_PER_MINUTE;
        settings.spam.pow_maxnumber = 1_000;
        settings.spam.pow_peak_maxnumber = 20_000;
    })
    .await;
    let maxnumber = |app: &TestApp| {
        let request = app.client.get(app.url("/join/challenge")).send();
        async move {
            let challenge: Value = request.await.unwrap().json().await.unwrap();
            challenge["maxnumber"].as_u64().unwrap()
        }
    };
    let sign_ups = |app: &TestApp, from: u32, to: u32| {
        let posts: Vec<_> = (from..to)
            .map(|n| {
                app.client
                    .post(app.url("/join"))
                    .json(&serde_json::json!({
                        "name": "Ola Nordmann",
                        "email": format!("ola{n}@example.org"),
                        "country": "NO",
                        "consent": true,
                    }))
                    .send()
            })
            .collect();
        async move {
            for post in posts {
                assert_eq!(post.await.unwrap().status(), 201);
            }
        }
    };
    assert_eq!(maxnumber(&app).await, 1_000, "quiet");
    sign_ups(&app, 0, 2 * BASELINE_PER_MINUTE).await;
    assert_eq!(
        maxnumber(&app).await,
        4_000,
        "twice the baseline in the last minute: four times the work"
    );
    sign_ups(&app, 2 * BASELINE_PER_MINUTE, 10 * BASELINE_PER_MINUTE).await;
    assert_eq!(maxnumber(&app).await, 20_000, "10×, capped at the peak");
    app.stop().await;
}
