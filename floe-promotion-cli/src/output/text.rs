//! The text form of every output: what a person reads on a terminal. Free text from
//! elsewhere (reasons, gate messages, errors) goes through `safe`, so no line can be forged.

use std::fmt::Write as _;

use super::*;

use super::lines::*;

impl Output {
    /// The text form.
    pub fn text(&self) -> String {
        let mut out = String::new();
        match self {
            Output::Promote(r) if r.outcome == Outcome::AlreadyPromoted => {
                // Idempotent: the version already runs there at this digest.
                record_text(&mut out, "already promoted", r);
            }
            Output::Promote(r) if r.outcome == Outcome::Staged => {
                record_text(&mut out, "staged (preview, the pointer did not move)", r)
            }
            Output::Promote(r) => record_text(&mut out, "promoted", r),
            Output::PromoteGroup(g) => g.text(&mut out),
            Output::PlanGroup(g) => g.text(&mut out),
            Output::Rollback(r) => record_text(&mut out, "rolled back", r),
            Output::Switch(r) if r.outcome == Outcome::SwitchedBack => {
                record_text(&mut out, "switched back", r)
            }
            Output::Switch(r) => record_text(&mut out, "switched", r),
            Output::SwitchPlan(p) => p.text(&mut out),
            Output::Plan(p) => {
                let _ = writeln!(
                    out,
                    "dry run: {}:{} {}-> {}: {}",
                    p.artifact,
                    p.version,
                    p.from.as_ref().map(|f| format!("{f} ")).unwrap_or_default(),
                    p.to,
                    match (p.would_succeed, &p.approval) {
                        (false, _) => "would be refused",
                        (true, Some(_)) => "would wait for approval",
                        (true, None) => "would succeed",
                    }
                );
                if let Some(d) = &p.digest {
                    let _ = writeln!(out, "  digest {d}");
                }
                if let Some(m) = p.copy_mode {
                    let _ = writeln!(
                        out,
                        "  {} -> {} ({})",
                        p.source.as_ref().map(|s| s.as_str()).unwrap_or("?"),
                        p.target,
                        match m {
                            CopyMode::TagOnly => "same repository: tags only",
                            CopyMode::Mount => "blobs mounted",
                            CopyMode::Stream => "blobs streamed",
                        }
                    );
                }
                if let Some(slot) = p.preview_slot {
                    let _ = writeln!(
                        out,
                        "  would stage on blue-green slot {}-{slot} (the pointer would not move)",
                        p.to
                    );
                }
                for t in &p.tags {
                    let _ = writeln!(out, "  would write {}:{} ({:?})", p.target, t.tag, t.action);
                }
                if let floe_promotion::config::Strategy::Canary { steps } = &p.strategy {
                    let _ = writeln!(out, "  as a canary: {}", canary_steps_text(steps));
                }
                gates_text(&mut out, &p.gates);
                for b in &p.blockers {
                    let _ = writeln!(out, "  blocked ({}): {}", b.kind, safe(&b.message));
                }
                if let Some(a) = &p.approval {
                    let _ = writeln!(
                        out,
                        "  would wait for approval{}:",
                        a.open_request
                            .map(|id| format!(" (open request {id})"))
                            .unwrap_or_default()
                    );
                    for r in &a.rules {
                        let _ = writeln!(
                            out,
                            "    rule {}: {} of users [{}] or groups [{}]",
                            r.name,
                            r.required,
                            r.users.join(", "),
                            r.groups.join(", ")
                        );
                    }
                }
            }
            Output::Status { environments } => {
                let mut rows = Vec::new();
                for s in environments {
                    if s.deployments.is_empty() {
                        let mut row = vec![s.environment.to_string()];
                        row.extend(std::iter::repeat_n("-".to_string(), 6));
                        rows.push(row);
                    }
                    for d in &s.deployments {
                        let tags: Vec<&str> = d.tags.iter().map(Tag::as_str).collect();
                        let dep = &d.deployment;
                        rows.push(vec![
                            s.environment.to_string(),
                            dep.artifact.to_string(),
                            dep.version.to_string(),
                            format!("sha256:{}", dep.digest.short()),
                            dep.since.format("%Y-%m-%d %H:%M:%S").to_string(),
                            safe(&dep.by).to_string(),
                            tags.join(","),
                        ]);
                    }
                }
                super::table::write_table(
                    &mut out,
                    "",
                    Some(&[
                        "ENVIRONMENT",
                        "ARTIFACT",
                        "VERSION",
                        "DIGEST",
                        "SINCE",
                        "BY",
                        "TAGS",
                    ]),
                    rows,
                );
                for s in environments {
                    for c in &s.canaries {
                        let _ = writeln!(out, "{}", canary_line(c));
                    }
                    for r in &s.revoked {
                        let _ =
                            writeln!(out, "{} runs REVOKED {}", s.environment, revocation_line(r));
                    }
                    super::switch::slots_text(&mut out, &s.environment, &s.slots);
                }
                for s in environments {
                    for h in &s.holds {
                        let _ = writeln!(out, "{}", hold_line(h));
                    }
                    if let Some(l) = &s.lock {
                        let _ = writeln!(
                            out,
                            "{} is locked by {} since {}{}: {}",
                            s.environment,
                            safe(&l.owner),
                            l.created.format("%Y-%m-%d %H:%M:%S"),
                            l.expires
                                .map(|e| format!(" until {}", e.format("%Y-%m-%d %H:%M:%S")))
                                .unwrap_or_default(),
                            safe(&l.reason)
                        );
                    }
                }
            }
            Output::History { events } => {
                if events.is_empty() {
                    let _ = writeln!(out, "no events");
                }
                for e in events {
                    let r = &e.record;
                    let _ = writeln!(
                        out,
                        "#{:<5} {} {:<19} {:<10} {}{}{}{}{}",
                        e.seq,
                        r.time.format("%Y-%m-%d %H:%M:%S"),
                        r.kind.as_str(),
                        safe(&r.actor.id),
                        r.artifact
                            .as_ref()
                            .map(|a| format!(
                                "{a}{} ",
                                r.version
                                    .as_ref()
                                    .map(|v| format!(":{v}"))
                                    .unwrap_or_default()
                            ))
                            .unwrap_or_default(),
                        r.from
                            .as_ref()
                            .map(|f| format!("{f} -> "))
                            .unwrap_or_default(),
                        r.environment
                            .as_ref()
                            .map(|e| e.to_string())
                            .unwrap_or_default(),
                        r.digest
                            .as_ref()
                            .map(|d| format!(" {d}"))
                            .unwrap_or_default(),
                        r.reason
                            .as_ref()
                            .map(|x| format!(" ({})", safe(x)))
                            .unwrap_or_default(),
                    );
                    if let Some(err) = r.details.get("error") {
                        let _ = writeln!(out, "       error: {}", safe(err));
                    }
                }
            }
            Output::Lock { lock } => {
                let _ = writeln!(
                    out,
                    "locked {} by {}: {}{}",
                    lock.environment,
                    safe(&lock.owner),
                    safe(&lock.reason),
                    lock.expires
                        .map(|e| format!(" (until {})", e.to_rfc3339()))
                        .unwrap_or_default()
                );
            }
            Output::Unlock { lock } => {
                let _ = writeln!(
                    out,
                    "unlocked {} (was locked by {}: {})",
                    lock.environment,
                    safe(&lock.owner),
                    safe(&lock.reason)
                );
            }
            Output::Approvals { requests } => {
                if requests.is_empty() {
                    let _ = writeln!(out, "no approval requests");
                }
                for r in requests {
                    approval_text(&mut out, r);
                }
            }
            Output::Approve(outcome) => {
                approval_text(&mut out, &outcome.request);
                if let Some(record) = &outcome.executed {
                    record_text(&mut out, "promoted", record);
                }
                if let Some(why) = &outcome.execution_blocked {
                    let _ = writeln!(
                        out,
                        "  approved, but the promotion did not run: {}; it stays approved until it expires (floe approvals execute {})",
                        safe(why),
                        outcome.request.id
                    );
                }
            }
            Output::Reject { request } => approval_text(&mut out, request),
            Output::VoteSignatures(v) => v.text(&mut out),
            Output::Leases { leases } => {
                if leases.is_empty() {
                    let _ = writeln!(out, "no promotion leases in force");
                }
                for l in leases {
                    lease_text(&mut out, l);
                }
            }
            Output::LeaseBroken { lease } => {
                let _ = write!(out, "broke the lease: ");
                lease_text(&mut out, lease);
            }
            Output::Envs { environments } => {
                for e in environments {
                    let _ = writeln!(
                        out,
                        "{}. {}  repository: {}",
                        e.position + 1,
                        e.name,
                        e.repository.as_deref().unwrap_or("(default)")
                    );
                    let _ = writeln!(
                        out,
                        "   gates: {}  (timeout {}s)",
                        if e.gates.is_empty() {
                            "none".to_string()
                        } else {
                            e.gates.join(", ")
                        },
                        e.gate_timeout_seconds
                    );
                    if !e.allowed_operators.is_empty() || !e.allowed_groups.is_empty() {
                        let _ = writeln!(
                            out,
                            "   operators: [{}]  groups: [{}]",
                            e.allowed_operators.join(", "),
                            e.allowed_groups.join(", ")
                        );
                    }
                    if e.separation_of_duties {
                        let _ = writeln!(out, "   separation of duties");
                    }
                    if let Some(p) = &e.version_pattern {
                        let _ = writeln!(out, "   versions must match {p}");
                    }
                    if let Some(s) = e.minimum_soak_seconds {
                        let _ = writeln!(
                            out,
                            "   minimum soak {}",
                            humantime::format_duration(std::time::Duration::from_secs(s))
                        );
                    }
                    if !e.allowed_sources.is_empty() {
                        let sources: Vec<&str> =
                            e.allowed_sources.iter().map(|s| s.as_str()).collect();
                        let _ = writeln!(out, "   from: {}", sources.join(", "));
                    }
                    for w in &e.freeze_windows {
                        let _ = writeln!(out, "   frozen {w}");
                    }
                    for w in &e.windows {
                        let _ = writeln!(out, "   window {}", safe(w));
                    }
                    if !e.window.open {
                        let _ = writeln!(
                            out,
                            "   promotion closed ({} window): {}; {}",
                            e.window.closed_by.as_deref().unwrap_or("deny"),
                            safe(e.window.reason.as_deref().unwrap_or("")),
                            match &e.window.next_open {
                                Some(t) => format!("opens next at {}", t.to_rfc3339()),
                                None => "does not open within a year".to_string(),
                            }
                        );
                    } else if !e.windows.is_empty() || !e.freeze_windows.is_empty() {
                        let _ = writeln!(out, "   promotion open now");
                    }
                }
            }
            Output::Verify(v) => {
                if v.first_break.is_none() {
                    let _ = writeln!(
                        out,
                        "{}: {} events verified ({}){}",
                        if v.intact {
                            "audit chain intact"
                        } else {
                            "audit chain consistent on its own"
                        },
                        v.events,
                        v.source,
                        v.head
                            .as_ref()
                            .map(|h| format!(", head {h}"))
                            .unwrap_or_default()
                    );
                } else if let Some(b) = &v.first_break {
                    let _ = writeln!(
                        out,
                        "audit chain BROKEN at event {}{}: {}",
                        b.seq,
                        b.id.map(|i| format!(" ({i})")).unwrap_or_default(),
                        b.problem
                    );
                }
                if let Some(c) = &v.checkpoints {
                    super::checkpoint::checkpoints_text(&mut out, c);
                }
            }
            Output::Checkpoint(t) => {
                super::checkpoint::taken_text(&mut out, t);
            }
            Output::Export {
                format,
                events,
                out: file,
            } => {
                let _ = writeln!(out, "exported {events} events as {format} to {file}");
            }
            Output::Attest(a) => {
                let _ = writeln!(
                    out,
                    "attached {} evidence ({}) to {}:{} {} in {} as {}",
                    a.kind, a.status, a.artifact, a.version, a.digest, a.environment, a.evidence
                );
            }
            Output::Auto(a) => auto_text(&mut out, a),
            Output::Hold { hold } => {
                let _ = writeln!(out, "{}", hold_line(hold));
            }
            Output::Revoked { revocation: r } | Output::Unrevoked { revocation: r } => {
                let verb = if matches!(self, Output::Revoked { .. }) {
                    "revoked"
                } else {
                    "lifted the revocation of"
                };
                let _ = writeln!(out, "{verb} {}", revocation_line(r));
            }
            Output::Revocations { revocations } => {
                if revocations.is_empty() {
                    let _ = writeln!(out, "no revoked digests");
                }
                for r in revocations {
                    let _ = writeln!(out, "{}", revocation_line(r));
                }
            }
            Output::Canary { canary } => {
                let _ = writeln!(out, "{}", canary_line(canary));
            }
            Output::Canaries { canaries } => {
                if canaries.is_empty() {
                    let _ = writeln!(out, "no canary runs");
                }
                for c in canaries {
                    let _ = writeln!(out, "{}", canary_line(c));
                }
            }
            Output::HoldReleased { hold } => {
                let _ = writeln!(
                    out,
                    "released the {} hold of {} on {} (was: {})",
                    hold.kind,
                    safe(&hold.holder),
                    hold.environment,
                    safe(&hold.reason)
                );
            }
            Output::AttestationVerified(v) => {
                let _ = writeln!(
                    out,
                    "verified: {} was promoted to {} ({}) at {}, signed by {}",
                    v.image,
                    v.environment,
                    v.level,
                    v.time_verified.to_rfc3339(),
                    v.key
                );
            }
            Output::Keygen(k) => {
                let _ = writeln!(
                    out,
                    "wrote {} (encrypted) and {} ({})",
                    safe(&k.private_key),
                    safe(&k.public_key),
                    k.fingerprint
                );
            }
            Output::Holds { holds } => {
                if holds.is_empty() {
                    let _ = writeln!(out, "no holds");
                }
                for h in holds {
                    let _ = writeln!(out, "{}", hold_line(h));
                }
            }
            Output::Notifications { deliveries } => {
                if deliveries.is_empty() {
                    let _ = writeln!(out, "no webhook deliveries recorded");
                }
                for d in deliveries {
                    delivery_text(&mut out, d);
                }
            }
            Output::NotificationsRetry(r) => {
                if r.retried.is_empty() && r.skipped.is_empty() {
                    let _ = writeln!(out, "no failed webhook deliveries to retry");
                }
                for d in &r.retried {
                    delivery_text(&mut out, d);
                }
                for d in &r.skipped {
                    let _ = writeln!(
                        out,
                        "skipped event {} to {}: the webhook is no longer configured",
                        d.seq,
                        safe(&d.webhook)
                    );
                }
                if r.still_failed > 0 {
                    let _ = writeln!(out, "{} deliveries still fail", r.still_failed);
                }
            }
        }
        out
    }
}
