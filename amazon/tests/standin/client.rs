//! `CatalogClient` and `TokenProvider` against the stand-in.

use std::collections::HashSet;

use pm_amazon::standin::{catalog_for, Shape, StandInConfig};
use pm_amazon::{choose, match_items, ChoiceKind, LwaCredentials, LwaError, SpApiError};
use pm_domain::Gtin;

use crate::common::{gtin_only, of_shape, roomy, setup, setup_with, upc_only, FR};

#[tokio::test]
async fn one_token_serves_many_requests_and_concurrent_callers_share_a_refresh() {
    let s = setup(roomy()).await;
    let eans = of_shape(Shape::Single, 3);
    // Concurrent first calls: one LWA request between them (single-flight).
    let searches = (0..8).map(|_| s.client.search_by_identifiers(FR, &eans));
    for outcome in futures::future::join_all(searches).await {
        assert_eq!(outcome.unwrap().items.len(), 3);
    }
    for _ in 0..5 {
        s.client.search_by_identifiers(FR, &eans).await.unwrap();
    }
    let stats = s.standin.stats();
    assert_eq!(stats.tokens_issued, 1);
    assert_eq!(stats.lwa_requests, 1);
    assert_eq!(s.tokens.refreshes(), 1);
    assert_eq!(stats.ok, 13);
}

#[tokio::test]
async fn token_expired_mid_job_costs_one_403_and_one_refresh() {
    let s = setup(roomy()).await;
    let eans = of_shape(Shape::Single, 2);
    let first = s.client.search_by_identifiers(FR, &eans).await.unwrap();
    assert_eq!(first.requests, 1);
    s.standin.expire_tokens();
    let second = s.client.search_by_identifiers(FR, &eans).await.unwrap();
    assert_eq!(second.requests, 2, "the 403 and the retry");
    assert_eq!(second.items.len(), 2);
    let stats = s.standin.stats();
    assert_eq!(stats.unauthorized, 1);
    assert_eq!(stats.tokens_issued, 2);
    assert_eq!(stats.ok, 2);
}

#[tokio::test]
async fn a_second_403_with_a_fresh_token_is_unauthorized() {
    // Tokens that are dead on arrival: the retry fails too.
    let s = setup(StandInConfig {
        token_ttl_secs: 0,
        ..roomy()
    })
    .await;
    let err = s
        .client
        .search_by_identifiers(FR, &of_shape(Shape::Single, 1))
        .await
        .unwrap_err();
    match &err {
        SpApiError::Unauthorized(message) => {
            assert!(
                message.contains("Access to requested resource is denied."),
                "{message}"
            )
        }
        other => panic!("expected unauthorized, got {other:?}"),
    }
    assert!(!err.is_retryable());
    let stats = s.standin.stats();
    assert_eq!(
        (stats.unauthorized, stats.tokens_issued, stats.requests),
        (2, 2, 2)
    );
}

#[tokio::test]
async fn wrong_credentials_give_lwa_errors_and_no_catalog_request() {
    let config = roomy();
    let good = config.credentials();
    let bad_refresh = LwaCredentials {
        refresh_token: "Atzr|revoked".into(),
        ..good.clone()
    };
    let s = setup_with(config.clone(), bad_refresh).await;
    let err = s
        .client
        .search_by_identifiers(FR, &of_shape(Shape::Single, 1))
        .await
        .unwrap_err();
    match &err {
        SpApiError::Token(LwaError::Rejected { status, error, .. }) => {
            assert_eq!((*status, error.as_str()), (400, "invalid_grant"))
        }
        other => panic!("expected invalid_grant, got {other:?}"),
    }
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("invalid_grant"), "{err}");
    assert_eq!(s.standin.stats().requests, 0);

    let bad_secret = LwaCredentials {
        client_secret: "wrong".into(),
        ..good
    };
    let s = setup_with(config, bad_secret).await;
    let err = s.tokens.access_token().await.unwrap_err();
    match err {
        LwaError::Rejected { status, error, .. } => {
            assert_eq!((status, error.as_str()), (401, "invalid_client"))
        }
        other => panic!("expected invalid_client, got {other:?}"),
    }
}

#[tokio::test]
async fn matches_every_shape_and_identifier_form() {
    let s = setup(roomy()).await;
    let single = of_shape(Shape::Single, 1)[0];
    let strong = of_shape(Shape::ClearBest(2), 1)[0];
    let clear = of_shape(Shape::ClearBest(3), 1)[0];
    let tied = of_shape(Shape::Tied, 1)[0];
    let close = of_shape(Shape::Close, 1)[0];
    let sparse = of_shape(Shape::Sparse, 1)[0];
    let missing = of_shape(Shape::NotFound, 1)[0];
    let upc = upc_only();
    let gtin = gtin_only();
    let indicator = Gtin::parse("10012345678902").unwrap();
    let requested = [
        single, strong, clear, tied, close, sparse, missing, upc, gtin, indicator,
    ];

    let outcome = s.client.search_by_identifiers(FR, &requested).await.unwrap();
    let expected_items: usize = requested.iter().map(|g| catalog_for(g).len()).sum();
    assert_eq!(outcome.items.len(), expected_items);
    let matched = match_items(&requested, &outcome.items);
    assert_eq!(matched.len(), requested.len());

    for g in &requested {
        let expected = catalog_for(g);
        let got = &matched[g.as_str()];
        let got_asins: HashSet<&str> = got.iter().map(|c| c.asin.as_str()).collect();
        let expected_asins: HashSet<&str> = expected.iter().map(|p| p.asin.as_str()).collect();
        assert_eq!(got_asins, expected_asins, "{g}");
        for (c, p) in got.iter().zip(&expected) {
            assert_eq!(c.asin.as_str(), p.asin);
            assert_eq!(c.sales_rank, p.best_rank());
            assert_eq!(c.title.as_deref(), Some(p.title.as_str()));
            assert_eq!(c.brand.as_deref(), Some(p.brand.as_str()));
            assert_eq!(c.image, p.main_image);
        }
    }

    let kind = |g: &Gtin| choose(&matched[g.as_str()]);
    assert_eq!(kind(&single).kind, ChoiceKind::Single);
    assert_eq!(kind(&upc).kind, ChoiceKind::Single, "upc-only listing matched");
    assert_eq!(kind(&gtin).kind, ChoiceKind::Single, "gtin-only listing matched");
    assert_eq!(kind(&indicator).kind, ChoiceKind::Single);
    assert_eq!(kind(&missing).kind, ChoiceKind::NotFound);
    assert_eq!(kind(&sparse).kind, ChoiceKind::Single);
    assert_eq!(kind(&tied).kind, ChoiceKind::Ambiguous);
    assert_eq!(kind(&close).kind, ChoiceKind::Ambiguous);

    let best = |g: &Gtin| {
        catalog_for(g)
            .into_iter()
            .min_by_key(|p| p.best_rank())
            .map(|p| p.asin)
    };
    let strong_choice = kind(&strong);
    assert_eq!(
        (strong_choice.kind, strong_choice.confidence),
        (ChoiceKind::BestRanked, 0.8)
    );
    assert_eq!(
        strong_choice.preferred.map(|a| a.as_str().to_owned()),
        best(&strong)
    );
    let clear_choice = kind(&clear);
    assert_eq!(
        (clear_choice.kind, clear_choice.confidence),
        (ChoiceKind::BestRanked, 0.6)
    );
    assert_eq!(
        clear_choice.preferred.map(|a| a.as_str().to_owned()),
        best(&clear)
    );
}

#[tokio::test]
async fn follows_pages_and_counts_requests() {
    let s = setup(roomy()).await;
    // 20 EANs with 3 ASINs each: 60 items, three pages of 20.
    let eans = of_shape(Shape::ClearBest(3), 20);
    let outcome = s.client.search_by_identifiers(FR, &eans).await.unwrap();
    assert_eq!(outcome.requests, 3);
    assert_eq!(outcome.items.len(), 60);
    let distinct: HashSet<&str> = outcome.items.iter().map(|i| i.asin.as_str()).collect();
    assert_eq!(distinct.len(), 60);
    let matched = match_items(&eans, &outcome.items);
    assert!(matched.values().all(|c| c.len() == 3));
    assert_eq!(s.standin.stats().ok, 3);
}

#[tokio::test]
async fn more_than_twenty_identifiers_are_refused_without_a_request() {
    let s = setup(roomy()).await;
    let eans = of_shape(Shape::Single, 21);
    let err = s.client.search_by_identifiers(FR, &eans).await.unwrap_err();
    assert!(matches!(err, SpApiError::TooManyIdentifiers(21)), "{err:?}");
    let stats = s.standin.stats();
    assert_eq!((stats.requests, stats.lwa_requests), (0, 0));
    // An empty batch is no request either.
    let empty = s.client.search_by_identifiers(FR, &[]).await.unwrap();
    assert_eq!(empty.requests, 0);
}

#[tokio::test]
async fn throttled_when_faster_than_the_bucket_and_rate_limit_reported() {
    // Refill so slow that nothing comes back during the test: exactly the burst passes.
    let s = setup(StandInConfig {
        rate_per_sec: 0.001,
        burst: 2,
        ..StandInConfig::default()
    })
    .await;
    let eans = of_shape(Shape::Single, 1);
    for _ in 0..2 {
        let ok = s.client.search_by_identifiers(FR, &eans).await.unwrap();
        assert_eq!(ok.rate_limit, Some(0.001));
    }
    let err = s.client.search_by_identifiers(FR, &eans).await.unwrap_err();
    assert!(matches!(err, SpApiError::Throttled { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(s.standin.stats().throttled, 1);

    // A faster plan: requests pass again once the bucket refills (waited for with a deadline).
    s.standin.set_rate(1000.0, 5);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    let outcome = loop {
        match s.client.search_by_identifiers(FR, &eans).await {
            Ok(outcome) => break outcome,
            Err(SpApiError::Throttled { .. }) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(2)).await
            }
            Err(e) => panic!("{e:?}"),
        }
    };
    assert_eq!(outcome.rate_limit, Some(1000.0));
}

#[tokio::test]
async fn default_plan_reports_two_per_second() {
    let s = setup(StandInConfig::default()).await;
    let outcome = s
        .client
        .search_by_identifiers(FR, &of_shape(Shape::Single, 1))
        .await
        .unwrap();
    assert_eq!(outcome.rate_limit, Some(2.0));
}
