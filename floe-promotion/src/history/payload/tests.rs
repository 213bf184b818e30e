//! Round trips and refusals of the typed payloads.

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::*;
use crate::error::Error;
use crate::history::{AuditEvent, GENESIS_HASH};
use crate::model::Actor;
use crate::model::{ArtifactName, Digest, Tag};
use crate::registry::{CopyReport, EvidenceKind, EvidenceStatus};
use crate::release::approval::Phase;
use crate::state::{HoldKind, Liveness};

fn uuid() -> impl Strategy<Value = Uuid> {
    any::<u128>().prop_map(Uuid::from_u128)
}

fn time() -> impl Strategy<Value = DateTime<Utc>> {
    // 1970 to 2200, with nanoseconds.
    (0i64..7_258_118_400, 0u32..1_000_000_000)
        .prop_map(|(s, n)| DateTime::from_timestamp(s, n).expect("in range"))
}

fn tags() -> impl Strategy<Value = Vec<Tag>> {
    vec(
        "[A-Za-z0-9][A-Za-z0-9._-]{0,12}".prop_map(|s| Tag::new(s).expect("valid tag")),
        0..4,
    )
}

fn other() -> impl Strategy<Value = BTreeMap<String, String>> {
    btree_map("x_[a-z]{1,6}", any::<String>(), 0..3)
}

fn copy() -> impl Strategy<Value = Option<CopyReport>> {
    proptest::option::of(any::<[u64; 7]>().prop_map(|v| CopyReport {
        manifests_copied: v[0],
        blobs_mounted: v[1],
        blobs_uploaded: v[2],
        blobs_skipped: v[3],
        bytes_uploaded: v[4],
        signatures_copied: v[5],
        referrers_copied: v[6],
    }))
}

fn phase() -> impl Strategy<Value = Phase> {
    prop::sample::select(vec![
        Phase::Pending,
        Phase::Approved,
        Phase::Executing,
        Phase::Executed,
        Phase::Rejected,
        Phase::Expired,
    ])
}

fn lock_details() -> impl Strategy<Value = LockDetails> {
    (any::<String>(), any::<String>(), other()).prop_map(|(o, r, other)| LockDetails {
        lock_owner: o,
        lock_reason: r,
        other,
    })
}

fn failed() -> impl Strategy<Value = Failed> {
    (any::<String>(), proptest::option::of(uuid()), other()).prop_map(|(error, group, other)| {
        Failed {
            error,
            group,
            other,
        }
    })
}

fn payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        (
            uuid(),
            tags(),
            tags(),
            any::<bool>(),
            copy(),
            proptest::option::of(uuid()),
            proptest::option::of(any::<String>()),
            (proptest::option::of(uuid()), other())
        )
            .prop_map(
                |(request, tags, confirmed, noop, copy, approval, by, (group, other))| {
                    Payload::PromotionSucceeded(PromotionSucceeded {
                        request,
                        tags,
                        confirmed_after_lost_reply: confirmed,
                        noop,
                        copy,
                        approval,
                        executed_by: by,
                        group,
                        other,
                    })
                }
            ),
        failed().prop_map(Payload::PromotionFailed),
        failed().prop_map(Payload::RollbackFailed),
        (uuid(), time(), any::<String>(), other()).prop_map(|(approval, expires, rules, other)| {
            Payload::ApprovalRequested(ApprovalRequested {
                approval,
                expires,
                rules,
                other,
            })
        }),
        (
            uuid(),
            any::<bool>(),
            phase(),
            proptest::option::of((any::<String>(), any::<String>(), any::<String>())),
            other()
        )
            .prop_map(|(approval, yes, status, signed, other)| {
                Payload::ApprovalDecided(ApprovalDecided {
                    approval,
                    decision: if yes {
                        Decision::Approved
                    } else {
                        Decision::Rejected
                    },
                    status,
                    signature: signed.map(|(principal, message, signature)| {
                        crate::model::SignedVote {
                            principal,
                            message,
                            signature,
                        }
                    }),
                    other,
                })
            }),
        (uuid(), other()).prop_map(|(approval, other)| {
            Payload::ApprovalExpired(ApprovalExpired { approval, other })
        }),
        (tags(), tags(), other()).prop_map(|(tags, confirmed, other)| {
            Payload::RollbackSucceeded(RollbackSucceeded {
                tags,
                confirmed_after_lost_reply: confirmed,
                other,
            })
        }),
        (proptest::option::of(time()), other())
            .prop_map(|(expires, other)| Payload::Locked(Locked { expires, other })),
        lock_details().prop_map(Payload::Unlocked),
        lock_details().prop_map(Payload::LockOverridden),
        (any::<bool>(), "[a-z ]{0,12}", "[a-z ]{1,12}").prop_map(|(deny, w, o)| {
            Payload::WindowOverridden(WindowOverridden::new(
                if deny {
                    crate::config::WindowKind::Deny
                } else {
                    crate::config::WindowKind::Allow
                },
                w,
                o,
            ))
        }),
        (
            "[0-9a-f]{64}",
            prop::sample::select(vec![
                EvidenceKind::Tests,
                EvidenceKind::Policy,
                EvidenceKind::Scan
            ]),
            any::<bool>(),
            other()
        )
            .prop_map(|(hex, kind, passed, other)| {
                Payload::EvidenceAttached(EvidenceAttached {
                    evidence: Digest::new(format!("sha256:{hex}")).expect("valid digest"),
                    kind,
                    status: if passed {
                        EvidenceStatus::Passed
                    } else {
                        EvidenceStatus::Failed
                    },
                    other,
                })
            }),
        (
            any::<String>(),
            time(),
            proptest::option::of((any::<String>(), any::<u32>())),
            prop::sample::select(vec![Liveness::Alive, Liveness::Gone, Liveness::Unknown]),
            any::<bool>(),
            other()
        )
            .prop_map(|(holder, expires, process, liveness, forced, other)| {
                Payload::LeaseBroken(LeaseBroken {
                    holder,
                    expires,
                    holder_process: process.map(|(host, pid)| HostProcess { host, pid }),
                    holder_liveness: liveness,
                    forced,
                    other,
                })
            }),
        (
            uuid(),
            any::<u32>(),
            0u8..=100,
            prop::sample::select(vec![
                CanaryAction::Started,
                CanaryAction::Advanced,
                CanaryAction::Completed,
                CanaryAction::Aborted,
                CanaryAction::Blocked
            ]),
            other()
        )
            .prop_map(|(canary, step, weight, action, other)| {
                Payload::CanaryStep(CanaryStepDetails {
                    canary,
                    step,
                    weight,
                    action,
                    other,
                })
            }),
        (
            any::<String>(),
            prop::sample::select(vec![HoldKind::Manual, HoldKind::Rollback]),
            any::<bool>(),
            other()
        )
            .prop_map(|(holder, hold_kind, placed, other)| {
                let d = HoldDetails {
                    holder,
                    hold_kind,
                    other,
                };
                if placed {
                    Payload::HoldPlaced(d)
                } else {
                    Payload::HoldReleased(d)
                }
            }),
        (
            uuid(),
            vec(
                ("[a-z]{1,6}", "[a-z0-9]{1,6}", "[0-9a-f]{64}").prop_map(|(a, v, h)| {
                    GroupMember {
                        artifact: ArtifactName::new(a).expect("valid name"),
                        version: Tag::new(v).expect("valid tag"),
                        digest: Digest::new(format!("sha256:{h}")).expect("valid digest"),
                    }
                }),
                0..4
            ),
            proptest::option::of("[a-z]{1,6}"),
            proptest::option::of(any::<String>()),
            other()
        )
            .prop_map(|(group, members, failed, error, other)| {
                let failed_group = failed.is_some();
                let g = GroupDetails {
                    group,
                    members,
                    failed: failed.map(|f| ArtifactName::new(f).expect("valid name")),
                    error,
                    other,
                };
                if failed_group {
                    Payload::GroupFailed(g)
                } else {
                    Payload::GroupPromoted(g)
                }
            }),
        (
            prop::sample::select(vec![EventKind::PromotionRequested]),
            btree_map("[a-z_]{1,8}", any::<String>(), 0..4)
        )
            .prop_map(|(kind, details)| Payload::Untyped { kind, details }),
    ]
}

fn record(payload: Payload) -> EventRecord {
    EventRecord::new(
        EventKind::PromotionRequested,
        Actor::new("ci").expect("valid actor"),
        DateTime::from_timestamp(1_800_000_000, 0).expect("in range"),
    )
    .with_payload(payload)
}

proptest! {
    /// payload → details → payload, directly and through the stored bytes; and the
    /// details written read back into the same details.
    #[test]
    fn every_payload_round_trips(p in payload()) {
        let r = record(p.clone());
        prop_assert_eq!(r.kind, p.kind());
        prop_assert_eq!(&r.details, &p.to_details());
        let read = r.payload().expect("own details parse");
        prop_assert_eq!(&read, &p);
        prop_assert_eq!(read.to_details(), r.details.clone());
        let stored = AuditEvent::seal(1, r, GENESIS_HASH.to_string());
        prop_assert_eq!(stored.record.payload().expect("stored details parse"), p);
    }

    /// Any details, for any kind, read as a payload or a clear error, never a panic; a
    /// payload that reads writes details that read back as the same payload.
    #[test]
    fn any_details_parse_or_fail_cleanly(
        kind in prop::sample::select(EventKind::ALL.to_vec()),
        details in btree_map(
            prop::sample::select(vec![
                "request", "tags", "noop", "copy", "approval", "expires", "status",
                "decision", "holder_liveness", "holder_process", "override", "x",
            ]).prop_map(str::to_string),
            "[a-z0-9:,=. -]{0,12}",
            0..6,
        ),
    ) {
        let mut r = record(Payload::none(kind));
        r.details = details;
        match r.payload() {
            Ok(p) => {
                prop_assert_eq!(p.kind(), kind);
                prop_assert_eq!(record(p.clone()).payload().expect("rewritten details parse"), p);
            }
            Err(e) => {
                prop_assert!(matches!(e, Error::InvalidInput { what: "event detail", .. }), "{e:?}");
                prop_assert!(e.to_string().contains(&r.id.to_string()), "{e}");
            }
        }
    }
}

/// A kind, its details, the key an error names and a piece of its reason.
type Case<'a> = (EventKind, Vec<(&'a str, &'a str)>, &'a str, &'a str);

#[test]
fn malformed_values_are_errors_naming_the_key_and_the_event() {
    let id = "0ec57a12-9ef0-43ee-b26c-b91c96d86462";
    let digest = format!("sha256:{}", "0".repeat(64));
    let cases: Vec<Case<'_>> = vec![
        (
            EventKind::PromotionSucceeded,
            vec![("request", "nope"), ("tags", "")],
            "request",
            "not a UUID",
        ),
        (
            EventKind::PromotionSucceeded,
            vec![("request", id)],
            "tags",
            "missing",
        ),
        (
            EventKind::PromotionSucceeded,
            vec![("request", id), ("tags", "v1,,latest")],
            "tags",
            "invalid tag",
        ),
        (
            EventKind::PromotionSucceeded,
            vec![("request", id), ("tags", ""), ("noop", "yes")],
            "noop",
            "true or false",
        ),
        (
            EventKind::PromotionSucceeded,
            vec![("request", id), ("tags", ""), ("copy", "manifests=1")],
            "copy",
            "manifests=<count> mounted=<count>",
        ),
        (
            EventKind::PromotionSucceeded,
            vec![
                ("request", id),
                ("tags", ""),
                (
                    "copy",
                    "manifests=1 mounted=2 uploaded=x skipped=0 bytes=0 signatures=0 referrers=0",
                ),
            ],
            "copy",
            "copy report",
        ),
        (
            EventKind::Locked,
            vec![("expires", "tomorrow")],
            "expires",
            "RFC 3339",
        ),
        (EventKind::PromotionFailed, vec![], "error", "missing"),
        (
            EventKind::ApprovalDecided,
            vec![
                ("approval", id),
                ("decision", "maybe"),
                ("status", "pending"),
            ],
            "decision",
            "approved or rejected",
        ),
        (
            EventKind::ApprovalDecided,
            vec![
                ("approval", id),
                ("decision", "approved"),
                ("status", "sideways"),
            ],
            "status",
            "approval status",
        ),
        (
            EventKind::EvidenceAttached,
            vec![
                ("evidence", "sha256:zz"),
                ("kind", "tests"),
                ("status", "passed"),
            ],
            "evidence",
            "invalid digest",
        ),
        (
            EventKind::EvidenceAttached,
            vec![
                ("evidence", &digest),
                ("kind", "vibes"),
                ("status", "passed"),
            ],
            "kind",
            "tests, policy or scan",
        ),
        (
            EventKind::LeaseBroken,
            vec![
                ("holder", "ci"),
                ("expires", "2026-01-05T12:00:00+00:00"),
                ("holder_liveness", "zombie"),
            ],
            "holder_liveness",
            "alive, gone or unknown",
        ),
        (
            EventKind::LeaseBroken,
            vec![
                ("holder", "ci"),
                ("expires", "2026-01-05T12:00:00+00:00"),
                ("holder_liveness", "gone"),
                ("holder_process", "host:-1"),
            ],
            "holder_process",
            "<host>:<pid>",
        ),
    ];
    for (kind, details, key, why) in cases {
        let mut r = record(Payload::none(kind));
        r.details = details
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let e = r.payload().expect_err(&format!("{kind} {details:?}"));
        let text = e.to_string();
        assert!(matches!(e, Error::InvalidInput { .. }), "{e:?}");
        assert!(text.contains(&format!("`{key}`")), "{key}: {text}");
        assert!(text.contains(&r.id.to_string()), "{text}");
        assert!(text.contains(kind.as_str()), "{text}");
        assert!(text.contains(why), "{why}: {text}");
    }
}

#[test]
fn unknown_keys_are_kept_and_typed_keys_win() {
    let mut r = record(Payload::none(EventKind::Unlocked));
    r.details = BTreeMap::from([
        ("lock_owner".to_string(), "ops".to_string()),
        ("lock_reason".to_string(), "freeze".to_string()),
        ("ticket".to_string(), "INC-7".to_string()),
    ]);
    let p = r.payload().unwrap();
    let Payload::Unlocked(ref lock) = p else {
        panic!("{p:?}")
    };
    assert_eq!(lock.lock_owner, "ops");
    assert_eq!(
        lock.other,
        BTreeMap::from([("ticket".to_string(), "INC-7".to_string())])
    );
    assert_eq!(p.to_details(), r.details);

    let mut clash = LockDetails::new("ops", "freeze");
    clash.other.insert("lock_owner".into(), "eve".into());
    assert_eq!(
        Payload::Unlocked(clash).to_details()["lock_owner"],
        "ops",
        "the typed field wins"
    );
}

#[test]
fn set_payload_sets_the_kind() {
    let r = record(Payload::ApprovalExpired(ApprovalExpired::new(Uuid::nil())));
    assert_eq!(r.kind, EventKind::ApprovalExpired);
    assert_eq!(
        r.details,
        BTreeMap::from([("approval".to_string(), Uuid::nil().to_string())])
    );
}
