//! One audit event as one CloudEvents 1.0 event in structured JSON mode, with CDEvents types
//! where they fit and `dev.floe.*` types for the rest.

use chrono::SecondsFormat;
use floe_promotion::history::{AuditEvent, EventKind};
use serde_json::{Value, json};

/// The CloudEvents version of every event.
pub const CLOUDEVENTS_SPEC_VERSION: &str = "1.0";
/// The released CDEvents specification the `dev.cdevents.*` events follow (`context.specversion`).
pub const CDEVENTS_SPEC_VERSION: &str = "0.5.1";
/// The version of the CDEvents service events (`deployed`, `upgraded`, `rolledback`) in
/// CDEvents [`CDEVENTS_SPEC_VERSION`].
pub const CDEVENTS_SERVICE_EVENT_VERSION: &str = "0.3.0";
/// The media type of a structured-mode CloudEvent.
pub const CLOUDEVENTS_JSON: &str = "application/cloudevents+json";

/// The CloudEvents type of each floe event kind that is not a CDEvent: one table. Kinds not
/// listed here (a later release's) are `dev.floe.` followed by their name with `_` as `.`.
///
/// A succeeded promotion is `dev.cdevents.service.deployed` or `.upgraded` and a succeeded
/// rollback `dev.cdevents.service.rolledback` (see [`cloud_event_type`]), unless the event
/// lacks the environment, artifact or digest a CDEvent needs: then the table's entry applies.
pub const FLOE_TYPES: &[(EventKind, &str)] = &[
    (
        EventKind::PromotionRequested,
        "dev.floe.promotion.requested",
    ),
    (
        EventKind::PromotionSucceeded,
        "dev.floe.promotion.succeeded",
    ),
    (EventKind::PromotionFailed, "dev.floe.promotion.failed"),
    (EventKind::ApprovalRequested, "dev.floe.approval.requested"),
    (EventKind::ApprovalDecided, "dev.floe.approval.decided"),
    (EventKind::ApprovalExpired, "dev.floe.approval.expired"),
    (EventKind::RollbackSucceeded, "dev.floe.rollback.succeeded"),
    (EventKind::RollbackFailed, "dev.floe.rollback.failed"),
    (EventKind::Locked, "dev.floe.environment.locked"),
    (EventKind::Unlocked, "dev.floe.environment.unlocked"),
    (
        EventKind::LockOverridden,
        "dev.floe.environment.lock_overridden",
    ),
    (EventKind::EvidenceAttached, "dev.floe.evidence.attached"),
    (EventKind::CanaryStep, "dev.floe.canary.step"),
    (EventKind::Switched, "dev.floe.bluegreen.switched"),
    (EventKind::LeaseBroken, "dev.floe.lease.broken"),
    (EventKind::HoldPlaced, "dev.floe.hold.placed"),
    (EventKind::HoldReleased, "dev.floe.hold.released"),
    (EventKind::ReleaseDiscovered, "dev.floe.release.discovered"),
    (
        EventKind::WindowOverridden,
        "dev.floe.environment.window_overridden",
    ),
    (
        EventKind::PreviewStaged,
        "dev.floe.bluegreen.preview_staged",
    ),
    (EventKind::GroupPromoted, "dev.floe.group.promoted"),
    (EventKind::GroupFailed, "dev.floe.group.failed"),
    (EventKind::Revoked, "dev.floe.artifact.revoked"),
    (EventKind::Unrevoked, "dev.floe.artifact.unrevoked"),
];

/// Whether an event put its artifact into an environment that never ran that artifact
/// before (CDEvents `service.deployed`) or replaced a version there (`service.upgraded`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// The artifact was never current in the environment before this event.
    First,
    /// Another event had made a version of the artifact current there before.
    Later,
}

/// The `dev.floe.*` type of a kind: its [`FLOE_TYPES`] entry, or `dev.floe.<kind>` with `_`
/// written `.` for kinds this release does not know (`hold_placed` is `dev.floe.hold.placed`).
pub fn floe_type(kind: EventKind) -> String {
    FLOE_TYPES
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, t)| (*t).to_string())
        .unwrap_or_else(|| format!("dev.floe.{}", kind.as_str().replace('_', ".")))
}

/// The CDEvents type of a kind, when it is one: a succeeded promotion is `deployed` the first
/// time its artifact enters the environment and `upgraded` after, a succeeded rollback is
/// `rolledback`.
fn cdevents_type(kind: EventKind, arrival: Arrival) -> Option<String> {
    let predicate = match (kind, arrival) {
        (EventKind::PromotionSucceeded, Arrival::First) => "deployed",
        (EventKind::PromotionSucceeded, Arrival::Later) => "upgraded",
        (EventKind::RollbackSucceeded, _) => "rolledback",
        _ => return None,
    };
    Some(format!(
        "dev.cdevents.service.{predicate}.{CDEVENTS_SERVICE_EVENT_VERSION}"
    ))
}

/// The CloudEvents `type` of an event: a CDEvents service event when the event is a
/// succeeded promotion or rollback naming its environment, artifact and digest, else
/// [`floe_type`].
pub fn cloud_event_type(event: &AuditEvent, arrival: Arrival) -> String {
    let r = &event.record;
    let complete = r.environment.is_some() && r.artifact.is_some() && r.digest.is_some();
    complete
        .then(|| cdevents_type(r.kind, arrival))
        .flatten()
        .unwrap_or_else(|| floe_type(r.kind))
}

/// Percent-encodes everything but unreserved characters and those in `keep`.
fn percent_encode(s: &str, keep: &[char]) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let c = b as char;
        if c.is_ascii_alphanumeric() || "-._~".contains(c) || keep.contains(&c) {
            out.push(c);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The purl of an OCI artifact (`pkg:oci/<name>@sha256%3A<hex>?repository_url=<repo>`): the
/// name is the last segment of the artifact's repository path, lowercase; the version is the
/// digest with its `:` percent-encoded; `repository_url` is the registry repository without
/// scheme, left out for OCI layout directories (a local path identifies nothing elsewhere).
pub fn oci_purl(artifact: &str, digest: &str, repository: Option<&str>) -> String {
    let name = artifact
        .rsplit('/')
        .next()
        .unwrap_or(artifact)
        .to_lowercase();
    let mut purl = format!(
        "pkg:oci/{}@{}",
        percent_encode(&name, &[]),
        percent_encode(digest, &[])
    );
    if let Some(repo) = repository.filter(|r| !r.starts_with("oci-layout:")) {
        purl.push_str("?repository_url=");
        purl.push_str(&percent_encode(repo, &['/']));
    }
    purl
}

/// What [`cloud_event`] needs besides the event.
#[derive(Clone, Debug)]
pub struct EventContext {
    /// First arrival of the artifact in the environment, or a later one.
    pub arrival: Arrival,
    /// The repository of the artifact in the event's environment, when known.
    pub repository: Option<String>,
}

/// The CloudEvents `source`: `/floe/<environment>` for events about an environment, `/floe`
/// otherwise.
pub fn source(event: &AuditEvent) -> String {
    match &event.record.environment {
        Some(env) => format!("/floe/{env}"),
        None => "/floe".to_string(),
    }
}

/// The CloudEvents `subject`: `<environment>/<artifact>`, the environment alone, or the
/// artifact alone, whichever the event names; `None` when it names neither.
pub fn subject(event: &AuditEvent) -> Option<String> {
    let r = &event.record;
    match (&r.environment, &r.artifact) {
        (Some(e), Some(a)) => Some(format!("{e}/{a}")),
        (Some(e), None) => Some(e.to_string()),
        (None, Some(a)) => Some(a.to_string()),
        (None, None) => None,
    }
}

/// The event as floe records it: `seq` and the record's members (kind, actor, artifact,
/// version, digest, environments, reason, gate results, details).
fn floe_data(event: &AuditEvent) -> Value {
    let mut data = serde_json::to_value(&event.record).unwrap_or_else(|_| json!({}));
    if let Value::Object(map) = &mut data {
        map.insert("seq".into(), json!(event.seq));
    }
    data
}

/// The CloudEvent of one audit event (structured JSON mode): `specversion` 1.0, `id` the
/// event id, `source`, `type`, `subject`, `time` (RFC 3339), `datacontenttype`
/// `application/json` and `data`. For a CDEvents type `data` is the CDEvent (context and
/// subject with `environment.id` and the `artifactId` purl, floe's record as `customData`);
/// for a `dev.floe.*` type it is floe's record.
pub fn cloud_event(event: &AuditEvent, ctx: &EventContext) -> Value {
    let r = &event.record;
    let ty = cloud_event_type(event, ctx.arrival);
    let id = r.id.to_string();
    let source = source(event);
    let time = r.time.to_rfc3339_opts(SecondsFormat::AutoSi, true);
    let subject = subject(event);
    let data = match (&r.environment, &r.artifact, &r.digest) {
        (Some(env), Some(artifact), Some(digest)) if ty.starts_with("dev.cdevents.") => {
            json!({
                "context": {
                    "specversion": CDEVENTS_SPEC_VERSION,
                    "id": id,
                    "source": source,
                    "type": ty,
                    "timestamp": time,
                },
                "subject": {
                    "id": format!("{env}/{artifact}"),
                    "source": source,
                    "content": {
                        "environment": { "id": env.as_str() },
                        "artifactId": oci_purl(
                            artifact.as_str(),
                            digest.as_str(),
                            ctx.repository.as_deref(),
                        ),
                    },
                },
                "customData": floe_data(event),
                "customDataContentType": "application/json",
            })
        }
        _ => floe_data(event),
    };
    let mut ce = json!({
        "specversion": CLOUDEVENTS_SPEC_VERSION,
        "id": id,
        "source": source,
        "type": ty,
        "time": time,
        "datacontenttype": "application/json",
        "data": data,
    });
    if let (Some(subject), Value::Object(map)) = (subject, &mut ce) {
        map.insert("subject".into(), Value::String(subject));
    }
    ce
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_kind_has_one_table_entry() {
        for kind in EventKind::ALL {
            assert_eq!(
                FLOE_TYPES.iter().filter(|(k, _)| *k == kind).count(),
                1,
                "{kind}"
            );
        }
        assert_eq!(
            floe_type(EventKind::PromotionFailed),
            "dev.floe.promotion.failed"
        );
    }

    #[test]
    fn purls_follow_the_oci_type() {
        let d = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(
            oci_purl(
                "team/MyApp",
                &d,
                Some("registry.example.com:5000/floe/prod/team/myapp")
            ),
            format!(
                "pkg:oci/myapp@sha256%3A{}?repository_url=registry.example.com%3A5000/floe/prod/team/myapp",
                "ab".repeat(32)
            )
        );
        assert_eq!(
            oci_purl("app", &d, Some("oci-layout:./registry/app")),
            format!("pkg:oci/app@sha256%3A{}", "ab".repeat(32))
        );
    }
}
