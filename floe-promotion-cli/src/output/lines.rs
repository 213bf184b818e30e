//! The text lines of the parts that several outputs share: a lease, a canary, a revocation,
//! a hold, an automatic pass, an approval, a promotion record and a notification delivery.

use std::fmt::Write as _;

use super::*;

pub(super) fn lease_text(out: &mut String, l: &LeaseOutput) {
    let lease = &l.lease;
    let _ = writeln!(
        out,
        "{} held by {} since {} until {}; process {} ({})",
        lease.environment,
        safe(&lease.holder),
        lease.acquired.format("%Y-%m-%d %H:%M:%S"),
        lease.expires.format("%Y-%m-%d %H:%M:%S"),
        lease
            .process
            .as_ref()
            .map(|p| format!("{}:{}", safe(&p.host), p.pid))
            .unwrap_or_else(|| "not recorded".into()),
        l.holder_liveness
    );
}

pub(super) fn canary_steps_text(steps: &[floe_promotion::config::CanaryStep]) -> String {
    steps
        .iter()
        .map(|s| match s.pause {
            Some(p) => format!("{}% for {}", s.weight, humantime::format_duration(p)),
            None if s.weight < 100 => format!("{}% until advanced", s.weight),
            None => format!("{}%", s.weight),
        })
        .collect::<Vec<_>>()
        .join(" -> ")
}

pub(super) fn canary_line(c: &CanaryView) -> String {
    format!(
        "{} runs a canary of {}:{} {} at {}% (step {} of {}, {}){}; stable: {}",
        c.environment,
        c.artifact,
        c.version,
        c.digest,
        c.weight,
        c.step,
        c.steps.len(),
        c.phase,
        c.due
            .map(|d| format!(", advances by itself at {}", d.format("%Y-%m-%d %H:%M:%S")))
            .unwrap_or_default(),
        c.stable
            .as_ref()
            .map(|s| format!("{} {}", s.version, s.digest))
            .unwrap_or_else(|| "none".into())
    )
}

pub(super) fn revocation_line(r: &floe_promotion::state::Revocation) -> String {
    format!(
        "{} {} (revoked by {} at {}: {})",
        r.artifact,
        r.digest,
        safe(&r.by),
        r.at.format("%Y-%m-%d %H:%M:%S"),
        safe(&r.reason)
    )
}

pub(super) fn hold_line(h: &Hold) -> String {
    format!(
        "{} is held by {} ({} hold since {}): {}",
        h.environment,
        safe(&h.holder),
        h.kind,
        h.placed.format("%Y-%m-%d %H:%M:%S"),
        safe(&h.reason)
    )
}

pub(super) fn auto_text(out: &mut String, a: &AutoOutput) {
    let now = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S");
    for d in &a.decisions {
        let what = d
            .candidate
            .as_ref()
            .map(|c| format!(" {}:{}", c.artifact, c.version))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{now} {} <- {}{what}: {}: {}",
            d.environment,
            d.from,
            d.action,
            safe(&d.detail)
        );
    }
    if a.decisions.is_empty() && !a.stopped {
        let _ = writeln!(out, "{now} no environment has auto_promote");
    }
    if a.stopped {
        let _ = writeln!(out, "{now} stopped on request");
    }
}

pub(super) fn approval_text(out: &mut String, r: &ApprovalView) {
    let t = &r.ticket;
    let _ = writeln!(
        out,
        "{} {} {}:{} {} {} -> {} requested by {} (expires {})",
        r.id,
        r.status,
        t.artifact,
        t.version,
        t.digest,
        t.from,
        t.to,
        safe(&t.requested_by.id),
        t.expires.format("%Y-%m-%d %H:%M:%S")
    );
    for v in &r.votes {
        let _ = writeln!(
            out,
            "  {} by {}{}",
            if v.approve { "approved" } else { "rejected" },
            safe(&v.actor.id),
            v.comment
                .as_deref()
                .map(|c| format!(": {}", safe(c)))
                .unwrap_or_default()
        );
    }
    for rule in &t.rules {
        let got = r.assigned.get(&rule.name).map(Vec::as_slice).unwrap_or(&[]);
        let _ = writeln!(
            out,
            "  rule {}: {}/{} [{}] (users: {}; groups: {})",
            rule.name,
            got.len(),
            rule.required,
            got.join(", "),
            rule.users.join(", "),
            rule.groups.join(", ")
        );
    }
}

/// One line per gate: `gate NAME STATUS MESSAGE`, columns sized to the longest name.
pub(super) fn gates_text(out: &mut String, gates: &[GateResult]) {
    super::table::write_table(
        out,
        "  ",
        None,
        gates.iter().map(|g| {
            vec![
                "gate".to_string(),
                safe(&g.gate).to_string(),
                g.status.to_string(),
                safe(&g.message).to_string(),
            ]
        }),
    );
}

pub(super) fn record_text(out: &mut String, verb: &str, r: &PromotionRecord) {
    let _ = writeln!(
        out,
        "{verb} {}:{} {}{} -> {} ({})",
        r.artifact,
        r.version,
        r.from.as_ref().map(|f| format!("{f} ")).unwrap_or_default(),
        r.digest,
        r.to,
        match r.outcome {
            Outcome::AlreadyPromoted => "nothing written".to_string(),
            Outcome::CanaryStarted => "canary started; the pointer moves at 100%".to_string(),
            other => format!("{other:?}"),
        }
    );
    let _ = writeln!(out, "  repository {}", r.repository);
    for t in &r.tags_written {
        let _ = writeln!(out, "  wrote {}:{t}", r.repository);
    }
    if let Some(c) = &r.copy {
        let _ = writeln!(
            out,
            "  copied {} manifest(s): {} blob(s) mounted, {} uploaded ({} bytes), {} already present; {} signature(s), {} referrer(s)",
            c.manifests_copied,
            c.blobs_mounted,
            c.blobs_uploaded,
            c.bytes_uploaded,
            c.blobs_skipped,
            c.signatures_copied,
            c.referrers_copied
        );
    }
    gates_text(out, &r.gates);
    if r.window_overridden {
        let _ = writeln!(
            out,
            "  promotion window overridden: {}",
            safe(r.reason.as_deref().unwrap_or(""))
        );
    }
    if r.lock_overridden {
        let _ = writeln!(
            out,
            "  lock overridden: {}",
            safe(r.reason.as_deref().unwrap_or(""))
        );
    }
    for w in &r.warnings {
        let _ = writeln!(out, "  warning: {}", safe(w));
    }
}

pub(super) fn delivery_text(out: &mut String, d: &DeliveryOutcome) {
    let _ = writeln!(
        out,
        "event {} {} {}: {} after {} attempt{}{}{}  ({})",
        d.seq,
        d.event_id,
        safe(&d.webhook),
        d.status,
        d.attempts,
        if d.attempts == 1 { "" } else { "s" },
        d.http_status
            .map(|s| format!(", HTTP {s}"))
            .unwrap_or_default(),
        d.error
            .as_deref()
            .map(|e| format!(": {}", safe(e)))
            .unwrap_or_default(),
        d.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
}
