//! The stand-in's HTTP contract, with raw requests: validation, auth, throttling, paging, LWA.

use pm_amazon::standin::{catalog_for, Shape, StandIn, StandInConfig, StandInHandle};
use pm_amazon::TokenProvider;
use serde_json::Value;

use crate::common::{of_shape, roomy, FR};

struct Raw {
    standin: StandInHandle,
    http: reqwest::Client,
    token: String,
}

impl Raw {
    async fn start(config: StandInConfig) -> Self {
        let standin = StandIn::start(config).await.unwrap();
        let http = reqwest::Client::new();
        let token = TokenProvider::with_endpoint(http.clone(), standin.lwa_url(), standin.credentials())
            .access_token()
            .await
            .unwrap();
        Self { standin, http, token }
    }

    async fn get(&self, query: &[(&str, &str)]) -> (u16, reqwest::header::HeaderMap, Value) {
        self.get_with_token(query, Some(&self.token)).await
    }

    async fn get_with_token(
        &self,
        query: &[(&str, &str)],
        token: Option<&str>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let url = self.standin.base_url().join("catalog/2022-04-01/items").unwrap();
        let mut request = self.http.get(url).query(query);
        if let Some(token) = token {
            request = request.header("x-amz-access-token", token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        (status, headers, body)
    }
}

fn csv(n: usize) -> String {
    of_shape(Shape::Single, n)
        .iter()
        .map(|g| g.as_str().to_owned())
        .collect::<Vec<_>>()
        .join(",")
}

#[tokio::test]
async fn every_invalid_parameter_is_a_400_error_list() {
    let raw = Raw::start(roomy()).await;
    let one = csv(1);
    let twenty_one = csv(21);
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "missing marketplaceIds",
            vec![("identifiers", &one), ("identifiersType", "EAN")],
        ),
        (
            "two marketplaces",
            vec![
                ("identifiers", &one),
                ("identifiersType", "EAN"),
                ("marketplaceIds", "A13V1IB3VIYZZH,A1PA6795UKMFR9"),
            ],
        ),
        (
            "21 identifiers",
            vec![
                ("identifiers", &twenty_one),
                ("identifiersType", "EAN"),
                ("marketplaceIds", FR),
            ],
        ),
        (
            "identifiers without type",
            vec![("identifiers", &one), ("marketplaceIds", FR)],
        ),
        (
            "bad identifiersType",
            vec![
                ("identifiers", &one),
                ("identifiersType", "BARCODE"),
                ("marketplaceIds", FR),
            ],
        ),
        (
            "bad includedData",
            vec![
                ("identifiers", &one),
                ("identifiersType", "EAN"),
                ("marketplaceIds", FR),
                ("includedData", "summaries,prices"),
            ],
        ),
        (
            "pageSize too large",
            vec![
                ("identifiers", &one),
                ("identifiersType", "EAN"),
                ("marketplaceIds", FR),
                ("pageSize", "21"),
            ],
        ),
        (
            "pageSize not a number",
            vec![
                ("identifiers", &one),
                ("identifiersType", "EAN"),
                ("marketplaceIds", FR),
                ("pageSize", "ten"),
            ],
        ),
        (
            "pageSize zero",
            vec![
                ("identifiers", &one),
                ("identifiersType", "EAN"),
                ("marketplaceIds", FR),
                ("pageSize", "0"),
            ],
        ),
        (
            "identifiers with keywords",
            vec![
                ("identifiers", &one),
                ("identifiersType", "EAN"),
                ("marketplaceIds", FR),
                ("keywords", "kettle"),
            ],
        ),
        ("neither identifiers nor keywords", vec![("marketplaceIds", FR)]),
        (
            "sku without sellerId",
            vec![
                ("identifiers", "ABC-1"),
                ("identifiersType", "SKU"),
                ("marketplaceIds", FR),
            ],
        ),
        (
            "foreign pageToken",
            vec![
                ("identifiers", &one),
                ("identifiersType", "EAN"),
                ("marketplaceIds", FR),
                ("pageToken", "nonsense"),
            ],
        ),
    ];
    for (name, query) in &cases {
        let (status, headers, body) = raw.get(query).await;
        assert_eq!(status, 400, "{name}: {body}");
        let error = &body["errors"][0];
        assert_eq!(error["code"], "InvalidInput", "{name}");
        assert!(!error["message"].as_str().unwrap().is_empty(), "{name}");
        assert!(error.get("details").is_some(), "{name}");
        assert_eq!(headers["x-amzn-ratelimit-limit"], "1000.0", "{name}");
        assert!(headers.contains_key("x-amzn-requestid"), "{name}");
    }
    assert_eq!(raw.standin.stats().bad_requests, cases.len() as u64);
}

#[tokio::test]
async fn valid_variants_are_accepted() {
    let raw = Raw::start(roomy()).await;
    let one = csv(1);
    // Keyword search: valid, nothing found. Default includedData is summaries only.
    let (status, _, body) = raw.get(&[("keywords", "kettle"), ("marketplaceIds", FR)]).await;
    assert_eq!((status, &body["numberOfResults"]), (200, &Value::from(0)));
    let (status, headers, body) = raw
        .get(&[
            ("identifiers", &one),
            ("identifiersType", "EAN"),
            ("marketplaceIds", FR),
        ])
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(headers.contains_key("x-amzn-requestid"));
    let item = &body["items"][0];
    assert!(item.get("summaries").is_some());
    assert!(item.get("identifiers").is_none());
    assert!(item.get("salesRanks").is_none());
    assert_eq!(item["summaries"][0]["marketplaceId"], FR);
    // SKU with a seller id: valid, nothing found.
    let (status, _, _) = raw
        .get(&[
            ("identifiers", "ABC-1"),
            ("identifiersType", "SKU"),
            ("sellerId", "A1"),
            ("marketplaceIds", FR),
        ])
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn missing_or_unknown_token_is_403() {
    let raw = Raw::start(roomy()).await;
    let one = csv(1);
    let query = [
        ("identifiers", one.as_str()),
        ("identifiersType", "EAN"),
        ("marketplaceIds", FR),
    ];
    for token in [None, Some("Atza|forged")] {
        let (status, headers, body) = raw.get_with_token(&query, token).await;
        assert_eq!(status, 403);
        assert_eq!(body["errors"][0]["code"], "Unauthorized");
        assert_eq!(
            body["errors"][0]["message"],
            "Access to requested resource is denied."
        );
        assert!(headers.contains_key("x-amzn-requestid"));
        assert!(!headers.contains_key("x-amzn-ratelimit-limit"));
    }
    raw.standin.expire_tokens();
    let (status, _, body) = raw.get(&query).await;
    assert_eq!(status, 403);
    assert_eq!(
        body["errors"][0]["details"],
        "The access token you provided is revoked, malformed or invalid."
    );
    assert_eq!(raw.standin.stats().unauthorized, 3);
}

#[tokio::test]
async fn throttled_requests_get_quota_exceeded() {
    let raw = Raw::start(StandInConfig {
        rate_per_sec: 0.001,
        burst: 3,
        ..StandInConfig::default()
    })
    .await;
    let one = csv(1);
    let query = [
        ("identifiers", one.as_str()),
        ("identifiersType", "EAN"),
        ("marketplaceIds", FR),
    ];
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let (status, headers, body) = raw.get(&query).await;
        statuses.push(status);
        if status == 429 {
            assert_eq!(body["errors"][0]["code"], "QuotaExceeded");
            assert_eq!(
                body["errors"][0]["message"],
                "You exceeded your quota for the requested resource."
            );
            assert!(headers.contains_key("x-amzn-requestid"));
            assert!(!headers.contains_key("x-amzn-ratelimit-limit"));
        } else {
            assert_eq!(headers["x-amzn-ratelimit-limit"], "0.001");
        }
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    let stats = raw.standin.stats();
    assert_eq!((stats.ok, stats.throttled, stats.requests), (3, 2, 5));
    assert_eq!(stats.log.len(), 5);
    assert!(stats.first_request_ms.unwrap() <= stats.last_request_ms.unwrap());
}

#[tokio::test]
async fn page_tokens_walk_every_item_once() {
    let raw = Raw::start(roomy()).await;
    let eans = of_shape(Shape::Close, 3);
    let ids = eans
        .iter()
        .map(|g| g.as_str().to_owned())
        .collect::<Vec<_>>()
        .join(",");
    let expected: Vec<String> = eans.iter().flat_map(catalog_for).map(|p| p.asin).collect();
    assert_eq!(expected.len(), 9);
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut query = vec![
            ("identifiers", ids.as_str()),
            ("identifiersType", "EAN"),
            ("marketplaceIds", FR),
            ("includedData", "identifiers"),
            ("pageSize", "2"),
        ];
        if let Some(t) = &token {
            query.push(("pageToken", t));
        }
        let (status, _, body) = raw.get(&query).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["numberOfResults"], 9);
        if pages > 0 {
            assert!(body["pagination"]["previousToken"].is_string());
        }
        pages += 1;
        for item in body["items"].as_array().unwrap() {
            seen.push(item["asin"].as_str().unwrap().to_owned());
        }
        match body["pagination"]["nextToken"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 5);
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn lwa_accepts_json_and_refuses_bad_grants() {
    let raw = Raw::start(roomy()).await;
    let creds = raw.standin.credentials();
    let lwa = raw.standin.lwa_url();
    let response = raw
        .http
        .post(lwa.clone())
        .header("content-type", "application/json")
        .body(
            serde_json::json!({
                "grant_type": "refresh_token",
                "refresh_token": creds.refresh_token,
                "client_id": creds.client_id,
                "client_secret": creds.client_secret,
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert!(body["access_token"].as_str().unwrap().starts_with("Atza|"));
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 3600);

    let form = |grant: &'static str, secret: String| {
        vec![
            ("grant_type", grant.to_owned()),
            ("refresh_token", creds.refresh_token.clone()),
            ("client_id", creds.client_id.clone()),
            ("client_secret", secret),
        ]
    };
    for (fields, status, error) in [
        (
            form("client_credentials", creds.client_secret.clone()),
            400,
            "unsupported_grant_type",
        ),
        (form("refresh_token", "nope".into()), 401, "invalid_client"),
        (
            vec![("grant_type", "refresh_token".to_owned())],
            400,
            "invalid_request",
        ),
    ] {
        let response = raw.http.post(lwa.clone()).form(&fields).send().await.unwrap();
        assert_eq!(response.status(), status, "{error}");
        let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        assert_eq!(body["error"], error);
        assert!(body["error_description"].is_string());
    }
    let stats = raw.standin.stats();
    // One token for `Raw::start`, one here; three refusals.
    assert_eq!((stats.tokens_issued, stats.lwa_rejected), (2, 3));
}

#[tokio::test]
async fn stats_endpoint_unknown_paths_and_shutdown() {
    let raw = Raw::start(roomy()).await;
    let one = csv(1);
    raw.get(&[
        ("identifiers", &one),
        ("identifiersType", "EAN"),
        ("marketplaceIds", FR),
    ])
    .await;
    let base = raw.standin.base_url();
    let stats: Value = serde_json::from_slice(
        &raw.http
            .get(base.join("_standin/stats").unwrap())
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(stats["requests"], 1);
    assert_eq!(stats["ok"], 1);
    assert_eq!(stats["tokens_issued"], 1);
    assert_eq!(stats["log"][0]["status"], 200);

    let response = raw
        .http
        .get(base.join("catalog/2020-12-01/items").unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert!(response.headers().contains_key("x-amzn-requestid"));

    let expired = raw
        .http
        .post(base.join("_standin/expire-tokens").unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(expired.status(), 204);
    let (status, _, _) = raw
        .get(&[
            ("identifiers", &one),
            ("identifiersType", "EAN"),
            ("marketplaceIds", FR),
        ])
        .await;
    assert_eq!(status, 403);

    let Raw { standin, http, .. } = raw;
    standin.shutdown().await;
    // A new connection is refused once the server is gone.
    let fresh = reqwest::Client::new();
    drop(http);
    assert!(fresh
        .get(base.join("_standin/stats").unwrap())
        .send()
        .await
        .is_err());
}
