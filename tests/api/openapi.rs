//! openapi.yaml stays true: every documented operation is served on its listener, and
//! what the server answers (good and bad requests alike) is a documented status whose
//! JSON body matches the documented schema. schemathesis (.ci/run) then throws
//! generated requests at both listeners.

use serde_json::{Value, json};

use joinform::followup::links::{SectionToken, csrf_value};

use crate::followup_pages::{a_minute_ago, in_a_day, link_key, person_token, with_followup};
use crate::helpers::{TestApp, created_id, spawn_app_with, valid_json};
use crate::operator_helpers::add_token;

fn spec() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml"))
        .expect("openapi.yaml at the top of the repository");
    serde_yaml_ng::from_str(&text).expect("openapi.yaml is valid YAML")
}

/// Follows a local `$ref`.
fn resolve<'a>(spec: &'a Value, node: &'a Value) -> &'a Value {
    match node.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference.trim_start_matches('#');
            resolve(
                spec,
                spec.pointer(pointer)
                    .unwrap_or_else(|| panic!("dangling {reference}")),
            )
        }
        None => node,
    }
}

/// Checks `value` against the subset of JSON Schema the document uses; returns the
/// first mismatch.
fn check(spec: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let schema = resolve(spec, schema);
    if value.is_null() && schema.get("nullable") == Some(&json!(true)) {
        return Ok(());
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for part in all {
            check(spec, part, value, at)?;
        }
    }
    if let Some(any) = schema.get("oneOf").and_then(Value::as_array)
        && !any.iter().any(|part| check(spec, part, value, at).is_ok())
    {
        return Err(format!("{at}: matches no alternative"));
    }
    let type_ok = match schema.get("type").and_then(Value::as_str) {
        None => true,
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        Some(other) => return Err(format!("{at}: unknown type {other}")),
    };
    if !type_ok {
        return Err(format!("{at}: {value} is not a {}", schema["type"]));
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        return Err(format!("{at}: {value} is not one of {allowed:?}"));
    }
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for name in required.iter().filter_map(Value::as_str) {
            if value.get(name).is_none() {
                return Err(format!("{at}: `{name}` is missing from {value}"));
            }
        }
    }
    if let (Some(properties), Some(object)) = (
        schema.get("properties").and_then(Value::as_object),
        value.as_object(),
    ) {
        for (name, property) in properties {
            if let Some(field) = object.get(name) {
                check(spec, property, field, &format!("{at}.{name}"))?;
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (index, item) in array.iter().enumerate() {
            check(spec, items, item, &format!("{at}[{index}]"))?;
        }
    }
    Ok(())
}

/// Asserts that `response` is documented for `method path`, and its JSON body fits.
async fn assert_documented(spec: &Value, method: &str, path: &str, response: reqwest::Response) {
    let status = response.status().as_u16().to_string();
    let operation = &spec["paths"][path][method];
    assert!(operation.is_object(), "{method} {path} is not documented");
    let documented = operation["responses"]
        .get(&status)
        .unwrap_or_else(|| panic!("{method} {path} answered {status}, which is not documented"));
    let documented = resolve(spec, documented);
    let content_type = response.headers().get("content-type").map(|v| {
        v.to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .trim()
            .to_owned()
    });
    let body = response.bytes().await.unwrap();
    let Some(content_type) = content_type else {
        assert!(body.is_empty() || documented.get("content").is_none());
        return;
    };
    let media = documented["content"].get(&content_type).unwrap_or_else(|| {
        panic!("{method} {path} {status}: content type {content_type} is not documented")
    });
    if content_type == "application/json" {
        let value: Value = serde_json::from_slice(&body).unwrap();
        if let Err(problem) = check(spec, &media["schema"], &value, "body") {
            panic!("{method} {path} {status}: {problem}");
        }
    }
}

/// Every operation of the document, as (method, path, tag).
fn operations(spec: &Value) -> Vec<(String, String, String)> {
    let mut found = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let tag = operation["tags"][0].as_str().unwrap().to_owned();
            found.push((method.clone(), path.clone(), tag));
        }
    }
    found
}

fn base(app: &TestApp, tag: &str) -> String {
    match tag {
        "public" => app.address.clone(),
        "admin" => app.admin_address.clone(),
        other => panic!("unknown tag {other}"),
    }
}

#[tokio::test]
async fn every_documented_operation_is_served_and_answers_as_documented() {
    let spec = spec();
    let mut token = String::new();
    let app = spawn_app_with(|s| {
        token = add_token(s, "openapi", &[]);
        with_followup(s);
    })
    .await;
    let client = &app.client;
    let mut requests: Vec<(&str, String, reqwest::RequestBuilder)> = Vec::new();
    let join = || client.post(app.url("/join"));
    requests.extend([
        ("post", "/join".to_owned(), join().json(&valid_json())),
        (
            "post",
            "/join".to_owned(),
            join().json(&json!({"email": "nope"})),
        ),
        (
            "post",
            "/join".to_owned(),
            join().json(&json!(["not", "an", "object"])),
        ),
        (
            "post",
            "/join".to_owned(),
            join().header("content-type", "text/plain").body("x"),
        ),
        ("post", "/join".to_owned(), join().form(&[("name", "Kari")])),
        (
            "post",
            "/join".to_owned(),
            join().json(&json!({"name": "x".repeat(20_000)})),
        ),
    ]);
    // The follow-up pages' links: a good one for each page, and one past its expiry.
    let id = created_id(app.post_json(&valid_json()).await).await;
    let person = person_token(&app, &id, "Norway", in_a_day());
    let section = SectionToken::issue(&link_key(&app), "Norway", in_a_day());
    let expired = person_token(&app, &id, "Norway", a_minute_ago());
    let link = |path: &str| {
        path.replace(
            "{token}",
            if path.contains("section") {
                &section
            } else {
                &person
            },
        )
    };
    for (method, path, tag) in operations(&spec) {
        if method == "get" {
            let url = format!("{}{}", base(&app, &tag), link(&path));
            requests.push(("get", path.clone(), client.get(&url)));
            if tag == "admin" {
                let authorised = client.get(&url).bearer_auth(&token);
                requests.push(("get", path, authorised));
            }
        }
    }
    let forget = || client.post(format!("{}/admin/forget", app.admin_address));
    requests.extend([
        (
            "get",
            "/admin/submissions".to_owned(),
            client
                .get(format!(
                    "{}/admin/submissions?format=json&status=all",
                    app.admin_address
                ))
                .bearer_auth(&token),
        ),
        (
            "get",
            "/admin/submissions".to_owned(),
            client
                .get(format!(
                    "{}/admin/submissions?status=maybe",
                    app.admin_address
                ))
                .bearer_auth(&token),
        ),
        (
            "post",
            "/admin/forget".to_owned(),
            forget().json(&json!({"email": "kari@example.org"})),
        ),
        (
            "post",
            "/admin/forget".to_owned(),
            forget()
                .bearer_auth(&token)
                .json(&json!({"email": "kari@example.org"})),
        ),
        (
            "post",
            "/admin/forget".to_owned(),
            forget().bearer_auth(&token).json(&json!({"email": 5})),
        ),
    ]);
    let mark = |id: &str| client.post(format!("{}/admin/followup/{id}", app.admin_address));
    let unknown = uuid::Uuid::now_v7().to_string();
    for request in [
        mark(&unknown).json(&json!({"state": "contacted"})),
        mark(&unknown)
            .bearer_auth(&token)
            .json(&json!({"state": "contacted"})),
        mark(&unknown)
            .bearer_auth(&token)
            .json(&json!({"state": "new"})),
        mark("not-an-id")
            .bearer_auth(&token)
            .form(&[("state", "joined")]),
    ] {
        requests.push(("post", "/admin/followup/{id}".to_owned(), request));
    }
    let review = |path: &str| client.post(format!("{}{path}", app.admin_address));
    requests.push((
        "get",
        "/admin/review".to_owned(),
        client
            .get(format!("{}/admin/review?status=maybe", app.admin_address))
            .bearer_auth(&token),
    ));
    for path in ["/admin/review/release", "/admin/review/discard"] {
        for request in [
            review(path)
                .bearer_auth(&token)
                .json(&json!({"ids": [unknown]})),
            review(path).bearer_auth(&token).json(&json!({"ids": []})),
            review(path)
                .bearer_auth(&token)
                .form(&[("ids", unknown.as_str())]),
            review(path).json(&json!({"ids": [unknown]})),
        ] {
            requests.push(("post", path.to_owned(), request));
        }
    }
    let key = link_key(&app);
    let followup = |token: &str| client.post(app.url(&format!("/followup/{token}")));
    let person_csrf = csrf_value(&key, &person);
    for (status, request) in [
        (
            303,
            followup(&person).form(&[("state", "contacted"), ("csrf", &person_csrf)]),
        ),
        (
            400,
            followup(&person).form(&[("state", "new"), ("csrf", &person_csrf)]),
        ),
        (403, followup(&person).form(&[("state", "joined")])),
        (
            403,
            followup(&person)
                .header("accept", "application/json")
                .json(&json!({"state": "joined", "csrf": person_csrf})),
        ),
        (
            403,
            followup(&person)
                .header("sec-fetch-site", "cross-site")
                .form(&[("state", "joined"), ("csrf", &person_csrf)]),
        ),
        (404, followup("not-a-token").form(&[("state", "joined")])),
        (410, followup(&expired).form(&[("state", "joined")])),
        (413, followup(&person).body("x".repeat(2_000))),
        (
            415,
            followup(&person)
                .header("content-encoding", "br")
                .form(&[("state", "joined")]),
        ),
        (404, client.get(app.url("/followup/not-a-token"))),
        (410, client.get(app.url(&format!("/followup/{expired}")))),
    ] {
        let request = request.build().unwrap();
        let method = request.method().as_str().to_ascii_lowercase();
        let response = client.execute(request).await.unwrap();
        assert_eq!(response.status(), status, "{method} /followup/{{token}}");
        assert_documented(&spec, &method, "/followup/{token}", response).await;
    }
    let in_section = || client.post(app.url(&format!("/followup/section/{section}")));
    let section_csrf = csrf_value(&key, &section);
    for (status, request) in [
        (
            303,
            in_section().form(&[("state", "joined"), ("csrf", &section_csrf), ("id", &id)]),
        ),
        (
            404,
            in_section().form(&[("state", "joined"), ("csrf", &section_csrf), ("id", "x")]),
        ),
        (
            400,
            in_section().form(&[("state", "maybe"), ("csrf", &section_csrf), ("id", &id)]),
        ),
        (403, in_section().form(&[("state", "joined"), ("id", &id)])),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(
            response.status(),
            status,
            "post /followup/section/{{token}}"
        );
        assert_documented(&spec, "post", "/followup/section/{token}", response).await;
    }
    for (method, path, request) in requests {
        let response = request.send().await.unwrap();
        assert_documented(&spec, method, &path, response).await;
    }
    // The admin operations do not exist on the public listener, nor the reverse.
    for (method, path, tag) in operations(&spec) {
        let other = if tag == "admin" { "public" } else { "admin" };
        let url = format!("{}{path}", base(&app, other));
        let response = match method.as_str() {
            "get" => client.get(&url).send().await.unwrap(),
            _ => client.post(&url).json(&json!({})).send().await.unwrap(),
        };
        assert_eq!(
            response.status(),
            404,
            "{method} {path} answers on the {other} listener"
        );
    }
    app.stop().await;
}

/// The visitor's pages, on a server that mails its visitors (double opt-in): each
/// answer, good and refused, is a documented status with a documented body.
#[tokio::test]
async fn the_visitors_pages_answer_as_documented() {
    use joinform::domain::{SubmissionId, Timestamp};
    use joinform::visitor::LinkPurpose;

    use crate::visitor_pages::{token, visitor_key, with_visitors};

    let spec = spec();
    let app = spawn_app_with(with_visitors).await;
    let client = &app.client;
    let id = created_id(app.post_json(&valid_json()).await).await;
    let past = Timestamp::now().minus(std::time::Duration::from_secs(60));
    let expired =
        |purpose| visitor_key(&app).issue(purpose, SubmissionId::parse(&id).unwrap(), past);
    let confirm = token(&app, LinkPurpose::Confirm, &id);
    let withdraw = token(&app, LinkPurpose::Withdraw, &id);
    let access = token(&app, LinkPurpose::Access, &id);
    let csrf = |token: &str| visitor_key(&app).csrf_value(token);
    let url = |path: &str| app.url(path);
    let json = "application/json";
    // In order: the withdrawal comes last but for the pages that then say so.
    let requests: Vec<(&str, &str, u16, reqwest::RequestBuilder)> = vec![
        (
            "get",
            "/confirm/{token}",
            200,
            client.get(url(&format!("/confirm/{confirm}"))),
        ),
        (
            "get",
            "/confirm/{token}",
            404,
            client.get(url("/confirm/x")).header("accept", json),
        ),
        (
            "get",
            "/confirm/{token}",
            410,
            client
                .get(url(&format!("/confirm/{}", expired(LinkPurpose::Confirm))))
                .header("accept", json),
        ),
        (
            "post",
            "/confirm/{token}",
            403,
            client
                .post(url(&format!("/confirm/{confirm}")))
                .form(&[("csrf", "no")]),
        ),
        (
            "post",
            "/confirm/{token}",
            415,
            client
                .post(url(&format!("/confirm/{confirm}")))
                .header("content-type", "text/plain")
                .body("csrf=x"),
        ),
        (
            "post",
            "/confirm/{token}",
            413,
            client
                .post(url(&format!("/confirm/{confirm}")))
                .form(&[("csrf", "x".repeat(5000))]),
        ),
        (
            "post",
            "/confirm/{token}",
            200,
            client
                .post(url(&format!("/confirm/{confirm}")))
                .form(&[("csrf", csrf(&confirm))]),
        ),
        ("get", "/my-data", 200, client.get(url("/my-data?lang=sv"))),
        (
            "post",
            "/my-data",
            200,
            client
                .post(url("/my-data"))
                .form(&[("email", "kari@example.org")]),
        ),
        (
            "post",
            "/my-data",
            422,
            client.post(url("/my-data")).form(&[("email", "kari")]),
        ),
        (
            "post",
            "/my-data",
            415,
            client
                .post(url("/my-data"))
                .json(&json!({"email": "kari@example.org"})),
        ),
        (
            "post",
            "/my-data",
            403,
            client
                .post(url("/my-data"))
                .header("sec-fetch-site", "cross-site")
                .header("accept", json)
                .form(&[("email", "kari@example.org")]),
        ),
        (
            "get",
            "/my-data/{token}",
            200,
            client.get(url(&format!("/my-data/{access}"))),
        ),
        (
            "get",
            "/my-data/{token}",
            410,
            client.get(url(&format!("/my-data/{}", expired(LinkPurpose::Access)))),
        ),
        (
            "get",
            "/withdraw/{token}",
            200,
            client.get(url(&format!("/withdraw/{withdraw}"))),
        ),
        (
            "post",
            "/withdraw/{token}",
            200,
            client
                .post(url(&format!("/withdraw/{withdraw}")))
                .form(&[("csrf", csrf(&withdraw))]),
        ),
        (
            "post",
            "/confirm/{token}",
            410,
            client
                .post(url(&format!("/confirm/{confirm}")))
                .form(&[("csrf", csrf(&confirm))]),
        ),
        (
            "get",
            "/withdraw/{token}",
            200,
            client.get(url(&format!("/withdraw/{withdraw}"))),
        ),
    ];
    for (method, path, status, request) in requests {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), status, "{method} {path}");
        assert_documented(&spec, method, path, response).await;
    }
    assert_eq!(app.count(), 0, "withdrawn");
    app.stop().await;
}
