//! Per-route request counts and latency histograms in the Prometheus text format. Routes are
//! labelled by their template (`/v1/keys/{user_id}`), never by the concrete path, so the label
//! set stays bounded.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

/// Upper bounds of the latency buckets, in seconds (100 µs … 5 s).
const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct RouteStats {
    by_status: BTreeMap<u16, u64>,
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum_seconds: f64,
}

#[derive(Default)]
pub struct Metrics {
    routes: Mutex<BTreeMap<(String, String), RouteStats>>,
}

impl Metrics {
    pub fn record(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let s = routes
            .entry((method.to_string(), route.to_string()))
            .or_default();
        *s.by_status.entry(status).or_default() += 1;
        s.count += 1;
        s.sum_seconds += seconds;
        if let Some(i) = BUCKETS.iter().position(|b| seconds <= *b) {
            s.buckets[i] += 1;
        }
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        out.push_str(
            "# HELP http_requests_total HTTP requests by route template, method and status.\n",
        );
        out.push_str("# TYPE http_requests_total counter\n");
        for ((method, route), s) in routes.iter() {
            for (status, n) in &s.by_status {
                let _ = writeln!(
                    out,
                    "http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
                    escape(route)
                );
            }
        }
        out.push_str(
            "# HELP http_request_duration_seconds Time from request to response head, by route.\n",
        );
        out.push_str("# TYPE http_request_duration_seconds histogram\n");
        for ((method, route), s) in routes.iter() {
            let labels = format!("method=\"{method}\",route=\"{}\"", escape(route));
            let mut cumulative = 0;
            for (bound, n) in BUCKETS.iter().zip(s.buckets.iter()) {
                cumulative += n;
                let _ = writeln!(
                    out,
                    "http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(
                out,
                "http_request_duration_seconds_sum{{{labels}}} {}",
                s.sum_seconds
            );
            let _ = writeln!(
                out,
                "http_request_duration_seconds_count{{{labels}}} {}",
                s.count
            );
        }
        out
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The method as a label: any client can invent method names, so only the standard ones get a
/// series of their own and the rest share `other` (otherwise each request could add series).
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method as M;
    const KNOWN: [(M, &str); 7] = [
        (M::GET, "GET"),
        (M::POST, "POST"),
        (M::PUT, "PUT"),
        (M::DELETE, "DELETE"),
        (M::PATCH, "PATCH"),
        (M::HEAD, "HEAD"),
        (M::OPTIONS, "OPTIONS"),
    ];
    KNOWN
        .iter()
        .find(|(m, _)| m == method)
        .map_or("other", |(_, name)| name)
}

/// The documented template of the route that answered, set on the response by the route.
#[derive(Debug, Clone, Copy)]
pub struct RouteName(pub &'static str);

/// Middleware: times every request and records it under its route template.
pub async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = method_label(req.method());
    let matched = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string());
    let response = next.run(req).await;
    // Routes name themselves (two documented routes may share one router path).
    let route = match (response.extensions().get::<RouteName>(), matched) {
        (Some(name), _) => name.0.to_string(),
        (None, Some(m)) => m,
        // Unknown paths share one label, whatever the client asked for.
        (None, None) => "unmatched".to_string(),
    };
    metrics.record(
        method,
        &route,
        response.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_is_cumulative_and_labelled() {
        let m = Metrics::default();
        m.record("GET", "/v1/keys/{user_id}", 200, 0.0003);
        m.record("GET", "/v1/keys/{user_id}", 404, 0.002);
        let text = m.render();
        assert!(text.contains(
            "http_requests_total{method=\"GET\",route=\"/v1/keys/{user_id}\",status=\"200\"} 1"
        ));
        assert!(text.contains("route=\"/v1/keys/{user_id}\",le=\"0.0005\"} 1"));
        assert!(text.contains("route=\"/v1/keys/{user_id}\",le=\"0.0025\"} 2"));
        assert!(text.contains(
            "http_request_duration_seconds_count{method=\"GET\",route=\"/v1/keys/{user_id}\"} 2"
        ));
    }
}
