//! /healthz, /metrics, /openapi.json, and the router's own 404/405 answers. The OpenAPI
//! document, the router's route table and docs/api.md must list the same routes.

use crate::common;

use std::collections::BTreeSet;

use common::*;
use reqwest::Method;
use serde_json::Value;

#[tokio::test]
async fn healthz_reports_the_database() {
    let s = server().await;
    let r = s.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        (r.body["status"].as_str(), r.body["database"].as_str()),
        (Some("ok"), Some("ok"))
    );
    // Tests run PostgreSQL with fsync off: /healthz says so, read from the database.
    assert_eq!(r.body["durable"], Value::Bool(false), "{}", r.body);
    s.shutdown().await;
}

#[tokio::test]
async fn metrics_count_requests_per_route_template() {
    let s = server().await;
    let a = s.register(1).await;
    for _ in 0..3 {
        s.call(
            Method::GET,
            &format!("/v1/keys/{}", a.user_id),
            Some(&a.token),
            None,
        )
        .await;
    }
    s.call(Method::DELETE, "/v1/messages/12345", Some(&a.token), None)
        .await;
    let res = s.http.get(s.url("/metrics")).send().await.unwrap();
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = res.text().await.unwrap();
    assert!(
        text.contains(
            r#"http_requests_total{method="GET",route="/v1/keys/{user_id}",status="200"} 3"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"http_requests_total{method="POST",route="/v1/users",status="201"} 1"#),
        "{text}"
    );
    // Two routes share one template (`/v1/messages/{id}`); the method tells them apart.
    assert!(
        text.contains(
            r#"http_requests_total{method="DELETE",route="/v1/messages/{id}",status="404"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"http_request_duration_seconds_count{method="GET",route="/v1/keys/{user_id}"} 3"#
        ),
        "{text}"
    );
    assert!(text.contains(r#"http_request_duration_seconds_bucket{method="GET",route="/v1/keys/{user_id}",le="+Inf"} 3"#));
    assert!(
        !text.contains(&a.user_id.to_string()),
        "labels are templates, never concrete ids"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn unknown_routes_and_methods_are_json() {
    let s = server().await;
    s.call(Method::GET, "/v2/nothing", None, None)
        .await
        .error(404, "no_route");
    s.call(Method::PATCH, "/v1/users", None, None)
        .await
        .error(405, "method_not_allowed");
    s.shutdown().await;
}

/// (METHOD, path with parameters reduced to `{}`): names may differ, shapes may not.
fn shape(method: &str, path: &str) -> (String, String) {
    (
        method.to_uppercase(),
        reference_server::api::path_shape(path),
    )
}

#[tokio::test]
async fn openapi_is_valid_openapi_3_and_matches_router_and_docs() {
    let s = server().await;
    let doc = s.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(doc.status, 200);
    let doc = doc.body;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "OpenAPI 3: {}",
        doc["openapi"]
    );
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let paths = doc["paths"].as_object().expect("paths");
    let methods = ["get", "put", "post", "delete", "patch", "head", "options"];
    let mut documented = BTreeSet::new();
    let mut exact = BTreeSet::new();
    for (path, item) in paths {
        assert!(path.starts_with('/'));
        for (method, op) in item.as_object().unwrap() {
            assert!(methods.contains(&method.as_str()), "{method} {path}");
            let responses = op["responses"].as_object().expect("responses");
            assert!(
                !responses.is_empty(),
                "{method} {path} documents its responses"
            );
            // Every path parameter is declared.
            for name in path
                .split('{')
                .skip(1)
                .map(|p| p.split('}').next().unwrap())
            {
                let declared = op["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|p| p["name"] == name && p["in"] == "path");
                assert!(declared, "{method} {path} declares parameter {name}");
            }
            documented.insert(shape(method, path));
            exact.insert((method.to_uppercase(), path.clone()));
        }
    }
    // Every $ref resolves.
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for r in refs {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("local schema ref: {r}"));
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "unresolved $ref {r}"
        );
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    // The router's table and the OpenAPI document list the same routes, exactly.
    let table: BTreeSet<(String, String)> = reference_server::api::route_table()
        .into_iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(table, exact, "router routes == OpenAPI operations");
    // And docs/api.md's route table lists the same ones.
    let api_md =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/api.md")).unwrap();
    let in_docs: BTreeSet<(String, String)> = api_md
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            if cells.len() < 4 || !methods.contains(&cells[1].to_lowercase().as_str()) {
                return None;
            }
            Some((cells[1].to_string(), cells[2].trim_matches('`').to_string()))
        })
        .collect();
    assert_eq!(in_docs, exact, "docs/api.md routes == OpenAPI operations");
    // Every documented operation is served by the router (not its 404/405 fallback).
    for (method, path) in &exact {
        let concrete = path
            .replace("{user_id}", &uuid::Uuid::new_v4().to_string())
            .replace("{device_id}", "1")
            .replace("{id}", "1");
        let r = s
            .call(
                Method::from_bytes(method.as_bytes()).unwrap(),
                &concrete,
                None,
                None,
            )
            .await;
        assert!(
            !matches!(
                r.body["error"].as_str(),
                Some("no_route") | Some("method_not_allowed")
            ),
            "{method} {path} is routed: {r:?}"
        );
        assert!(r.status < 500, "{method} {path}: {r:?}");
    }
    assert_eq!(documented.len(), exact.len());
    s.shutdown().await;
}

/// The document's contract against the server's behaviour: no two templated paths of one
/// shape, the constraints the server enforces written down, and for every operation the
/// status codes it answers to hostile requests (no token, a body over every limit, a body
/// that is not JSON, a JSON array) are among the documented ones.
#[tokio::test]
async fn openapi_documents_the_constraints_and_every_status_the_server_gives() {
    let s = server().await;
    let doc = s.call(Method::GET, "/openapi.json", None, None).await.body;
    let paths = doc["paths"].as_object().expect("paths");
    let shapes: BTreeSet<String> = paths
        .keys()
        .map(|p| reference_server::api::path_shape(p))
        .collect();
    assert_eq!(
        shapes.len(),
        paths.len(),
        "two templated paths share a shape"
    );

    // Constraints the server enforces are in the schemas.
    let schemas = &doc["components"]["schemas"];
    let key_id = &schemas["OneTimePrekeyBody"]["properties"]["key_id"];
    assert_eq!(key_id["minimum"], 0, "{key_id}");
    assert_eq!(
        key_id["maximum"].as_f64(),
        Some(4_294_967_295.0),
        "{key_id}"
    );
    assert_ne!(key_id["format"], "int32", "{key_id}");
    let reg = &schemas["RegisterRequest"]["properties"]["registration_id"];
    assert_eq!(
        (reg["minimum"].as_f64(), reg["maximum"].as_f64()),
        (Some(1.0), Some(16380.0)),
        "{reg}"
    );
    let resolve = |v: &Value| -> Value {
        match v["$ref"].as_str() {
            Some(r) => schemas[r.trim_start_matches("#/components/schemas/")].clone(),
            None => v.clone(),
        }
    };
    let identity = &resolve(&schemas["RegisterRequest"]["properties"]["identity_key"]);
    let signature = &resolve(&schemas["SignedPrekeyBody"]["properties"]["signature"]);
    assert_eq!(signature["maxLength"].as_u64(), Some(88), "{signature}");
    assert_eq!(
        (
            identity["minLength"].as_u64(),
            identity["maxLength"].as_u64()
        ),
        (Some(44), Some(44)),
        "{identity}"
    );
    assert!(identity["pattern"].is_string(), "{identity}");
    let prekeys = &schemas["UploadPrekeysRequest"]["properties"]["prekeys"];
    assert_eq!(
        (prekeys["minItems"].as_u64(), prekeys["maxItems"].as_u64()),
        (Some(1), Some(100)),
        "{prekeys}"
    );

    // Every answer to a hostile request is documented for its operation.
    let account = s.register(1).await;
    let mut undocumented = Vec::new();
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let documented: BTreeSet<u16> = op["responses"]
                .as_object()
                .unwrap()
                .keys()
                .filter_map(|k| k.parse().ok())
                .collect();
            let concrete = path
                .replace("{user_id}", &account.user_id.to_string())
                .replace("{device_id}", &account.device_id.to_string())
                .replace("{id}", &account.user_id.to_string());
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let token = Some(account.token.as_str());
            let probes = [
                (
                    "no token",
                    s.call(m.clone(), &concrete, None, None).await.status,
                ),
                (
                    "a 2 MiB body",
                    s.call_raw(m.clone(), &concrete, token, vec![b' '; 2 << 20])
                        .await
                        .status,
                ),
                (
                    "a text/plain body",
                    s.send(
                        reqwest::Client::new()
                            .request(m.clone(), s.url(&concrete))
                            .bearer_auth(&account.token)
                            .header("content-type", "text/plain")
                            .body("hello"),
                    )
                    .await
                    .status,
                ),
                (
                    "a JSON array",
                    s.call_raw(m.clone(), &concrete, token, b"[1, 2]".to_vec())
                        .await
                        .status,
                ),
            ];
            for (what, status) in probes {
                // 101 is the WebSocket upgrade, never reached without its headers.
                if !documented.contains(&status) {
                    undocumented.push(format!(
                        "{method} {path}: {what} → {status} (documented: {documented:?})"
                    ));
                }
            }
        }
    }
    assert!(
        undocumented.is_empty(),
        "undocumented answers:\n{}",
        undocumented.join("\n")
    );
    s.shutdown().await;
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                if k == "$ref" {
                    out.push(v.as_str().unwrap().to_string());
                } else {
                    collect_refs(v, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// Every route except registration and operations refuses a missing or unknown token with a
/// 401 JSON body, before looking at anything else.
#[tokio::test]
async fn every_authenticated_route_needs_a_token() {
    let s = server().await;
    let open = ["/healthz", "/metrics", "/openapi.json", "/v1/users"];
    let before = s.snapshot().await;
    for (method, path) in reference_server::api::route_table() {
        if open.contains(&path) {
            continue;
        }
        let concrete = path
            .replace("{user_id}", &uuid::Uuid::new_v4().to_string())
            .replace("{device_id}", "1")
            .replace("{id}", "1");
        let body = serde_json::json!({});
        for token in [None, Some("wrong-token")] {
            let r = s.call(method.clone(), &concrete, token, Some(&body)).await;
            r.error(401, "unauthorized");
        }
    }
    assert_eq!(s.snapshot().await, before);
    s.shutdown().await;
}

/// Clients cannot grow /metrics: invented methods and unknown paths share fixed labels, and
/// every metric family is described.
#[tokio::test]
async fn metrics_labels_are_bounded_and_every_family_is_described() {
    let s = server().await;
    for i in 0..5 {
        let method = Method::from_bytes(format!("INVENTED{i}").as_bytes()).unwrap();
        s.call(method.clone(), "/v1/messages", None, None).await;
        s.call(method, &format!("/nowhere/{i}"), None, None).await;
    }
    let text = s
        .http
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!text.contains("INVENTED"), "{text}");
    assert!(!text.contains("/nowhere"), "{text}");
    assert!(
        text.contains(r#"http_requests_total{method="other",route="/v1/messages",status="405"} 5"#),
        "{text}"
    );
    assert!(
        text.contains(r#"http_requests_total{method="other",route="unmatched",status="404"} 5"#),
        "{text}"
    );
    assert!(!text.contains(r#"state="total""#), "{text}");
    let samples: BTreeSet<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap())
        .map(|n| {
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| n.strip_suffix(suffix))
                .filter(|base| text.contains(&format!("# TYPE {base} histogram")))
                .unwrap_or(n)
        })
        .collect();
    for family in samples {
        assert!(
            text.contains(&format!("# HELP {family} ")),
            "HELP for {family}"
        );
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "TYPE for {family}"
        );
    }
    s.shutdown().await;
}
