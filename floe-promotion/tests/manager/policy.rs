//! Who may promote and when: authorization, separation of duties, version patterns, allowed
//! sources, freeze windows and minimum soak.

use std::time::Duration;

use chrono::{DateTime, NaiveTime, Utc};
use floe_promotion::config::{Authorization, FreezeWindow, Weekday};
use floe_promotion::*;

use super::{env, req, three};

#[tokio::test]
async fn authorization_lists_operators_and_groups() {
    let mut p = three();
    p.env_mut("staging").authorization = Authorization {
        allowed_groups: vec!["release".into()],
        allowed_operators: vec!["alice".into()],
        separation_of_duties: false,
    };
    p.push_release("app", "v1", b"one").await;
    p.push_release("app", "v2", b"two").await;
    let m = p.manager();
    let err = m
        .promote(req("v1", "dev", "staging", "mallory"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Forbidden { .. }), "{err}");
    m.promote(req("v1", "dev", "staging", "alice"))
        .await
        .unwrap();
    let mut in_group = req("v2", "dev", "staging", "bob");
    in_group.actor = in_group.actor.with_groups(["release"]);
    m.promote(in_group).await.unwrap();
}

#[tokio::test]
async fn separation_of_duties_refuses_the_same_operator() {
    let mut p = three();
    p.env_mut("prod").authorization.separation_of_duties = true;
    p.push_release("app", "v1", b"one").await;
    let m = p.manager();
    m.promote(req("v1", "dev", "staging", "alice"))
        .await
        .unwrap();
    let err = m
        .promote(req("v1", "staging", "prod", "alice"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::SeparationOfDuties { .. }), "{err}");
    m.promote(req("v1", "staging", "prod", "bob"))
        .await
        .unwrap();
}

#[tokio::test]
async fn version_pattern_and_allowed_sources() {
    let mut p = three();
    p.settings.allow_skip = true;
    p.env_mut("staging").policy.version_pattern =
        Some(regex::Regex::new(r"^v\d+\.\d+\.\d+$").unwrap());
    p.env_mut("prod").policy.allowed_sources = vec![env("staging")];
    p.push_release("app", "v1", b"one").await;
    p.push_release("app", "v1.0.0", b"two").await;
    let m = p.manager();
    let err = m
        .promote(req("v1", "dev", "staging", "ci"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::PolicyViolation {
                rule: "version_pattern",
                ..
            }
        ),
        "{err}"
    );
    let err = m
        .promote(req("v1.0.0", "dev", "prod", "ci"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::PolicyViolation {
                rule: "allowed_sources",
                ..
            }
        ),
        "{err}"
    );
    m.promote(req("v1.0.0", "dev", "staging", "ci"))
        .await
        .unwrap();
}

#[tokio::test]
async fn freeze_windows_absolute_and_weekly() {
    let mut p = three();
    let start: DateTime<Utc> = p.clock.now();
    p.env_mut("staging").freeze_windows = vec![FreezeWindow::Absolute {
        start,
        end: start + chrono::Duration::hours(1),
        reason: "release freeze".into(),
    }];
    // The pipeline starts on a Monday at 12:00.
    p.env_mut("prod").freeze_windows = vec![FreezeWindow::Weekly {
        days: vec![Weekday::Mon],
        start: NaiveTime::from_hms_opt(13, 0, 0).unwrap(),
        end: NaiveTime::from_hms_opt(14, 0, 0).unwrap(),
        reason: "monday change board".into(),
    }];
    p.push_release("app", "v1", b"one").await;
    let m = p.manager();
    let err = m
        .promote(req("v1", "dev", "staging", "ci"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("release freeze"), "{err}");
    p.clock.advance(chrono::Duration::minutes(61));
    m.promote(req("v1", "dev", "staging", "ci")).await.unwrap();
    let err = m
        .promote(req("v1", "staging", "prod", "ops"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("monday change board"), "{err}");
    p.clock.advance(chrono::Duration::hours(1));
    m.promote(req("v1", "staging", "prod", "ops"))
        .await
        .unwrap();
}

#[tokio::test]
async fn minimum_soak_uses_the_clock() {
    let mut p = three();
    p.env_mut("prod").policy.minimum_soak = Some(Duration::from_secs(24 * 3600));
    p.push_release("app", "v1", b"one").await;
    let m = p.manager();
    m.promote(req("v1", "dev", "staging", "ci")).await.unwrap();
    p.clock.advance(chrono::Duration::hours(23));
    let err = m
        .promote(req("v1", "staging", "prod", "ops"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::PolicyViolation {
                rule: "minimum_soak",
                ..
            }
        ),
        "{err}"
    );
    p.clock.advance(chrono::Duration::hours(1));
    m.promote(req("v1", "staging", "prod", "ops"))
        .await
        .unwrap();
}

#[tokio::test]
async fn minimum_soak_fails_closed_without_an_arrival_record() {
    let mut p = three();
    p.env_mut("staging").policy.minimum_soak = Some(Duration::from_secs(60));
    p.push_release("app", "v1", b"one").await;
    let err = p
        .manager()
        .promote(req("v1", "dev", "staging", "ci"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cannot be measured"), "{err}");
}
