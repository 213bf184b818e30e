//! The conformance cases of `HistoryStore::query` and `deployments`.

use super::*;

/// `query` with `environment` returns exactly the events of that environment.
pub async fn query_by_environment(store: Arc<dyn HistoryStore>) {
    let events = seed(store.as_ref()).await;
    for name in ["staging", "prod", "nowhere"] {
        let got = store
            .query(&HistoryQuery {
                environment: Some(env(name)),
                ..Default::default()
            })
            .await
            .expect("query");
        let want = expect_filtered(&events, |e| {
            e.record.environment.as_ref().map(EnvName::as_str) == Some(name)
        });
        assert_eq!(got, want, "environment {name}");
    }
    // An event without environment never matches an environment filter.
    let mut r = EventRecord::new(EventKind::EvidenceAttached, actor("ci"), base_time());
    r.artifact = Some(art("app"));
    append_one(store.as_ref(), r).await;
    let got = store
        .query(&HistoryQuery {
            environment: Some(env("staging")),
            ..Default::default()
        })
        .await
        .expect("query");
    assert!(
        got.iter()
            .all(|e| e.record.environment == Some(env("staging")))
    );
}

/// `query` with `artifact` returns exactly that artifact's events.
pub async fn query_by_artifact(store: Arc<dyn HistoryStore>) {
    let events = seed(store.as_ref()).await;
    for name in ["app", "api", "other"] {
        let got = store
            .query(&HistoryQuery {
                artifact: Some(art(name)),
                ..Default::default()
            })
            .await
            .expect("query");
        let want = expect_filtered(&events, |e| {
            e.record.artifact.as_ref().map(ArtifactName::as_str) == Some(name)
        });
        assert_eq!(got, want, "artifact {name}");
    }
}

/// `query` with `version` returns exactly the events about that version.
pub async fn query_by_version(store: Arc<dyn HistoryStore>) {
    let events = seed(store.as_ref()).await;
    for v in ["v1", "v2", "v3", "v4"] {
        let got = store
            .query(&HistoryQuery {
                version: Some(tag(v)),
                ..Default::default()
            })
            .await
            .expect("query");
        let want = expect_filtered(&events, |e| {
            e.record.version.as_ref().map(Tag::as_str) == Some(v)
        });
        assert_eq!(got, want, "version {v}");
    }
}

/// `query` with `digest` returns exactly the events about that digest.
pub async fn query_by_digest(store: Arc<dyn HistoryStore>) {
    let events = seed(store.as_ref()).await;
    for v in ["v1", "v3", "never"] {
        let d = digest_of(v);
        let got = store
            .query(&HistoryQuery {
                digest: Some(d.clone()),
                ..Default::default()
            })
            .await
            .expect("query");
        let want = expect_filtered(&events, |e| e.record.digest.as_ref() == Some(&d));
        assert_eq!(got, want, "digest of {v}");
    }
}

/// `query` with `kinds` returns the events of any of those kinds; an empty list means all.
pub async fn query_by_kinds(store: Arc<dyn HistoryStore>) {
    let events = seed(store.as_ref()).await;
    let kinds = vec![EventKind::PromotionSucceeded, EventKind::Switched];
    let got = store
        .query(&HistoryQuery {
            kinds: kinds.clone(),
            ..Default::default()
        })
        .await
        .expect("query");
    assert_eq!(
        got,
        expect_filtered(&events, |e| kinds.contains(&e.record.kind))
    );
    assert_eq!(got.len(), 5);
    let none = store
        .query(&HistoryQuery {
            kinds: vec![EventKind::LockOverridden],
            ..Default::default()
        })
        .await
        .expect("query");
    assert!(none.is_empty());
    let every = store
        .query(&HistoryQuery {
            kinds: vec![],
            ..Default::default()
        })
        .await
        .expect("query");
    assert_eq!(every, events);
}

/// `since` is inclusive and `until` exclusive, to the nanosecond; results stay in sequence
/// order even when times are not.
pub async fn query_time_bounds(store: Arc<dyn HistoryStore>) {
    let t = base_time();
    let offsets = [
        Duration::seconds(5),
        Duration::zero(),
        Duration::nanoseconds(1),
        Duration::nanoseconds(999_999),
        Duration::milliseconds(1),
        Duration::milliseconds(1) + Duration::nanoseconds(1),
        Duration::seconds(-3),
    ];
    let events = store
        .append_batch(
            offsets
                .iter()
                .map(|d| record(EventKind::CanaryStep, "dev", "app", "v1", t + *d))
                .collect(),
        )
        .await
        .expect("append");
    let cases = [
        (Some(t + Duration::nanoseconds(1)), None),
        (None, Some(t + Duration::milliseconds(1))),
        (Some(t), Some(t + Duration::milliseconds(1))),
        (
            Some(t + Duration::nanoseconds(999_999)),
            Some(t + Duration::milliseconds(1) + Duration::nanoseconds(1)),
        ),
        (Some(t + Duration::seconds(5)), None),
        (Some(t + Duration::seconds(6)), None),
        (None, Some(t - Duration::seconds(3))),
        (Some(t + Duration::seconds(1)), Some(t)),
    ];
    for (since, until) in cases {
        let got = store
            .query(&HistoryQuery {
                since,
                until,
                ..Default::default()
            })
            .await
            .expect("query");
        let want = expect_filtered(&events, |e| {
            since.is_none_or(|s| e.record.time >= s) && until.is_none_or(|u| e.record.time < u)
        });
        assert_eq!(got, want, "since {since:?} until {until:?}");
        let newest = store
            .query(&HistoryQuery {
                since,
                until,
                order: Order::NewestFirst,
                limit: Some(2),
                ..Default::default()
            })
            .await
            .expect("query");
        let want_newest: Vec<_> = want.iter().rev().take(2).cloned().collect();
        assert_eq!(
            newest, want_newest,
            "newest, since {since:?} until {until:?}"
        );
    }
}

/// `after_seq` and `before_seq` are exclusive cursors, in both orders.
pub async fn query_seq_cursors(store: Arc<dyn HistoryStore>) {
    let events = seed(store.as_ref()).await;
    let q = |after: Option<u64>, before: Option<u64>, order: Order| HistoryQuery {
        after_seq: after,
        before_seq: before,
        order,
        ..Default::default()
    };
    let got = store
        .query(&q(Some(3), None, Order::OldestFirst))
        .await
        .expect("q");
    assert_eq!(seqs(&got), (4..=12).collect::<Vec<_>>());
    let got = store
        .query(&q(None, Some(7), Order::OldestFirst))
        .await
        .expect("q");
    assert_eq!(seqs(&got), (1..=6).collect::<Vec<_>>());
    let got = store
        .query(&q(Some(3), Some(7), Order::NewestFirst))
        .await
        .expect("q");
    assert_eq!(seqs(&got), vec![6, 5, 4]);
    let got = store
        .query(&q(Some(12), None, Order::OldestFirst))
        .await
        .expect("q");
    assert!(got.is_empty());
    let got = store
        .query(&q(None, Some(1), Order::NewestFirst))
        .await
        .expect("q");
    assert!(got.is_empty());
    let got = store
        .query(&q(Some(0), None, Order::OldestFirst))
        .await
        .expect("q");
    assert_eq!(got, events);

    // Paging forwards and backwards with a cursor and a limit visits every event once.
    let mut forward = Vec::new();
    let mut after = 0;
    loop {
        let page = store
            .query(&HistoryQuery {
                after_seq: Some(after),
                limit: Some(5),
                ..Default::default()
            })
            .await
            .expect("page");
        match page.last() {
            Some(last) => after = last.seq,
            None => break,
        }
        forward.extend(page);
    }
    assert_eq!(forward, events);
    let mut backward = Vec::new();
    let mut before = u64::MAX;
    loop {
        let page = store
            .query(&HistoryQuery {
                before_seq: Some(before),
                limit: Some(5),
                order: Order::NewestFirst,
                ..Default::default()
            })
            .await
            .expect("page");
        match page.last() {
            Some(last) => before = last.seq,
            None => break,
        }
        backward.extend(page);
    }
    backward.reverse();
    assert_eq!(backward, events);
}

/// `limit` caps the result; with [`Order::NewestFirst`] it keeps the newest events.
pub async fn query_limit_and_order(store: Arc<dyn HistoryStore>) {
    let events = seed(store.as_ref()).await;
    let q = |limit: Option<usize>, order: Order| HistoryQuery {
        limit,
        order,
        ..Default::default()
    };
    let got = store
        .query(&q(Some(3), Order::OldestFirst))
        .await
        .expect("q");
    assert_eq!(seqs(&got), vec![1, 2, 3]);
    let got = store
        .query(&q(Some(3), Order::NewestFirst))
        .await
        .expect("q");
    assert_eq!(seqs(&got), vec![12, 11, 10]);
    let got = store.query(&q(None, Order::NewestFirst)).await.expect("q");
    assert_eq!(seqs(&got), (1..=12).rev().collect::<Vec<_>>());
    let got = store
        .query(&q(Some(0), Order::NewestFirst))
        .await
        .expect("q");
    assert!(got.is_empty());
    let got = store
        .query(&q(Some(100), Order::OldestFirst))
        .await
        .expect("q");
    assert_eq!(got, events);
    let latest = store.latest(&env("staging"), 2).await.expect("latest");
    assert_eq!(seqs(&latest), vec![10, 9]);
}

/// Several filters together must all match.
pub async fn query_combined_filters(store: Arc<dyn HistoryStore>) {
    let events = seed(store.as_ref()).await;
    let t = base_time();
    let query = HistoryQuery {
        environment: Some(env("staging")),
        artifact: Some(art("app")),
        kinds: vec![EventKind::PromotionSucceeded, EventKind::RollbackSucceeded],
        since: Some(t + Duration::seconds(1)),
        until: Some(t + Duration::seconds(9)),
        after_seq: Some(1),
        before_seq: Some(12),
        limit: Some(2),
        order: Order::NewestFirst,
        ..Default::default()
    };
    let got = store.query(&query).await.expect("query");
    let mut want = expect_filtered(&events, |e| query.matches(e));
    want.reverse();
    want.truncate(2);
    assert_eq!(seqs(&got), vec![9, 7]);
    assert_eq!(got, want);
    let with_version = HistoryQuery {
        version: Some(tag("v1")),
        digest: Some(digest_of("v1")),
        limit: None,
        order: Order::OldestFirst,
        ..query
    };
    let got = store.query(&with_version).await.expect("query");
    assert_eq!(seqs(&got), vec![2, 9]);
}

fn deployment(e: &AuditEvent) -> Deployment {
    Deployment::from_event(e).expect("a deployment event")
}

/// `deployments` returns the latest event that sets the current version per environment and
/// artifact.
pub async fn deployments_latest_per_environment_and_artifact(store: Arc<dyn HistoryStore>) {
    assert!(store.deployments(None).await.expect("empty").is_empty());
    let events = seed(store.as_ref()).await;
    let got = store.deployments(None).await.expect("deployments");
    // prod/api: switched v3 (12); prod/app: v1 (5); staging/api: v3 (10);
    // staging/app: rollback to v1 (9) after v2 (7).
    let want: Vec<_> = [11usize, 4, 9, 8]
        .iter()
        .map(|i| deployment(&events[*i]))
        .collect();
    assert_eq!(got, want);
    let staging_app = &got[3];
    assert_eq!(staging_app.version, tag("v1"));
    assert_eq!(staging_app.kind, EventKind::RollbackSucceeded);
    assert_eq!(staging_app.seq, 9);
    assert_eq!(staging_app.by, "ci");
    assert_eq!(staging_app.since, events[8].record.time);
    // A later promotion moves it again.
    let again = append_one(
        store.as_ref(),
        record(
            EventKind::PromotionSucceeded,
            "staging",
            "app",
            "v4",
            base_time() + Duration::seconds(60),
        ),
    )
    .await;
    let got = store.deployments(None).await.expect("deployments");
    assert_eq!(got[3], deployment(&again));
}

/// `deployments` is sorted by environment then artifact, and filters to one environment.
pub async fn deployments_sorted_and_filtered(store: Arc<dyn HistoryStore>) {
    let t = base_time();
    let pairs = [
        ("prod", "zeta"),
        ("dev", "beta"),
        ("staging", "alpha"),
        ("dev", "alpha"),
        ("prod", "alpha"),
        ("dev", "a/b"),
    ];
    for (i, (e, a)) in pairs.iter().enumerate() {
        append_one(
            store.as_ref(),
            record(
                EventKind::PromotionSucceeded,
                e,
                a,
                "v1",
                t + Duration::seconds(i as i64),
            ),
        )
        .await;
    }
    let got = store.deployments(None).await.expect("deployments");
    let keys: Vec<_> = got
        .iter()
        .map(|d| (d.environment.to_string(), d.artifact.to_string()))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert_eq!(keys.len(), 6);
    let dev = store.deployments(Some(&env("dev"))).await.expect("dev");
    assert_eq!(
        dev.iter().map(|d| d.artifact.as_str()).collect::<Vec<_>>(),
        vec!["a/b", "alpha", "beta"]
    );
    assert!(dev.iter().all(|d| d.environment == env("dev")));
    assert!(
        store
            .deployments(Some(&env("qa")))
            .await
            .expect("qa")
            .is_empty()
    );
}

/// Events of kinds that do not set the current version, or that lack a field a deployment
/// needs, never count as deployments.
pub async fn deployments_ignore_other_kinds(store: Arc<dyn HistoryStore>) {
    let t = base_time();
    let ok = append_one(
        store.as_ref(),
        record(EventKind::PromotionSucceeded, "prod", "app", "v1", t),
    )
    .await;
    for kind in EventKind::ALL.into_iter().filter(|k| !k.sets_current()) {
        append_one(store.as_ref(), record(kind, "prod", "app", "v2", t)).await;
    }
    let mut no_digest = record(EventKind::PromotionSucceeded, "prod", "app", "v3", t);
    no_digest.digest = None;
    append_one(store.as_ref(), no_digest).await;
    let mut no_env = record(EventKind::Switched, "prod", "app", "v4", t);
    no_env.environment = None;
    append_one(store.as_ref(), no_env).await;
    let mut no_version = record(EventKind::RollbackSucceeded, "prod", "app", "v5", t);
    no_version.version = None;
    append_one(store.as_ref(), no_version).await;
    assert_eq!(
        store.deployments(None).await.expect("deployments"),
        vec![deployment(&ok)]
    );
}
