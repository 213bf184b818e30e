//! Exit codes of `floe`: named constants, mapped from error variants in one `match`.
//!
//! floe's historical numbers are kept where the meaning matches (3, 4, 5, 6, 8, 9, 11, 12, 13,
//! 14); the others are new.

use floe_promotion::Error;

/// Success, including a promotion of the version the target already runs at that digest
/// ("already promoted": idempotent, no tag written).
pub const OK: u8 = 0;
/// An unexpected failure (I/O, a store).
pub const FAILURE: u8 = 1;
/// Bad input: command-line usage, an invalid value or manifest.
pub const USAGE: u8 = 2;
/// An environment, artifact, tag or record was not found.
pub const NOT_FOUND: u8 = 3;
/// An immutable tag already points at another digest.
pub const IMMUTABILITY: u8 = 4;
/// The registry (or state store) is unavailable.
pub const UNAVAILABLE: u8 = 5;
/// A signature check failed.
pub const SIGNATURE: u8 = 6;
/// The registry refused the credentials.
pub const REGISTRY_AUTH: u8 = 7;
/// A gate failed, errored or timed out.
pub const GATE_FAILED: u8 = 8;
/// The transition is not allowed (backwards, skipping, same environment, a rollback to the
/// version already running).
pub const INVALID_TRANSITION: u8 = 9;
/// The audit chain does not verify.
pub const INTEGRITY: u8 = 10;
/// The version was never promoted to the environment.
pub const VERSION_NOT_PROMOTED: u8 = 11;
/// The actor is not authorized for the environment.
pub const AUTHORIZATION: u8 = 12;
/// The environment is locked.
pub const LOCKED: u8 = 13;
/// Separation of duties refuses the actor.
pub const SEPARATION_OF_DUTIES: u8 = 14;
/// The promotion waits for approval.
pub const APPROVAL_PENDING: u8 = 15;
/// The approval was rejected or expired.
pub const APPROVAL_CLOSED: u8 = 16;
/// An environment policy refuses (version pattern, soak, source, freeze window).
pub const POLICY_VIOLATION: u8 = 17;
/// A dependency is missing in the target environment.
pub const DEPENDENCY_MISSING: u8 = 18;
/// Another promoter holds the environment's lease; try again.
pub const BUSY: u8 = 19;
/// The state changed concurrently or disagrees with the registry.
pub const CONFLICT: u8 = 20;
/// The manifest uses a setting whose behaviour is not implemented yet.
pub const NOT_SUPPORTED: u8 = 21;
/// The digest is revoked: refused everywhere until unrevoked.
pub const REVOKED: u8 = 22;

/// Every exit code with its name, for the documentation and its test.
pub const ALL: [(u8, &str); 23] = [
    (OK, "ok"),
    (FAILURE, "failure"),
    (USAGE, "usage"),
    (NOT_FOUND, "not_found"),
    (IMMUTABILITY, "immutability"),
    (UNAVAILABLE, "unavailable"),
    (SIGNATURE, "signature"),
    (REGISTRY_AUTH, "registry_auth"),
    (GATE_FAILED, "gate_failed"),
    (INVALID_TRANSITION, "invalid_transition"),
    (INTEGRITY, "integrity"),
    (VERSION_NOT_PROMOTED, "version_not_promoted"),
    (AUTHORIZATION, "authorization"),
    (LOCKED, "locked"),
    (SEPARATION_OF_DUTIES, "separation_of_duties"),
    (APPROVAL_PENDING, "approval_pending"),
    (APPROVAL_CLOSED, "approval_closed"),
    (POLICY_VIOLATION, "policy_violation"),
    (DEPENDENCY_MISSING, "dependency_missing"),
    (BUSY, "busy"),
    (CONFLICT, "conflict"),
    (NOT_SUPPORTED, "not_supported"),
    (REVOKED, "revoked"),
];

/// The exit code of an error.
pub fn code(error: &Error) -> u8 {
    match error {
        Error::InvalidInput { .. } | Error::Config { .. } => USAGE,
        Error::NotSupported { .. } => NOT_SUPPORTED,
        Error::NotFound { .. } => NOT_FOUND,
        Error::Unauthorized { .. } => REGISTRY_AUTH,
        Error::Unavailable { .. } => UNAVAILABLE,
        Error::Immutability { .. } => IMMUTABILITY,
        Error::Signature { .. } | Error::VoteSignature { .. } => SIGNATURE,
        Error::GateFailed { failed } => {
            if failed.iter().all(|g| g.gate == "signature") {
                SIGNATURE
            } else {
                GATE_FAILED
            }
        }
        Error::InvalidTransition { .. } => INVALID_TRANSITION,
        Error::VersionNotPromoted { .. } => VERSION_NOT_PROMOTED,
        Error::Forbidden { .. } => AUTHORIZATION,
        Error::Locked { .. } => LOCKED,
        Error::SeparationOfDuties { .. } => SEPARATION_OF_DUTIES,
        Error::ApprovalPending { .. } => APPROVAL_PENDING,
        Error::ApprovalClosed { .. } => APPROVAL_CLOSED,
        Error::PolicyViolation { .. } => POLICY_VIOLATION,
        Error::DependencyMissing { .. } => DEPENDENCY_MISSING,
        Error::DependencyFailed { source, .. } => code(source),
        Error::Revoked { .. } => REVOKED,
        Error::Busy { .. } => BUSY,
        Error::Conflict(_) => CONFLICT,
        Error::Integrity { .. } => INTEGRITY,
        Error::Store { .. } | Error::Io { .. } => FAILURE,
        _ => FAILURE,
    }
}

/// The name of an exit code.
pub fn name(code: u8) -> &'static str {
    ALL.iter()
        .find(|(c, _)| *c == code)
        .map(|(_, n)| *n)
        .unwrap_or("failure")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_named() {
        let mut seen = std::collections::HashSet::new();
        for (c, n) in ALL {
            assert!(seen.insert(c), "duplicate code {c}");
            assert_eq!(name(c), n);
        }
    }

    /// The README's table lists every code with its name, in order.
    #[test]
    fn the_readme_documents_every_code() {
        let readme = include_str!("../README.md");
        let rows: Vec<(u8, String)> = readme
            .lines()
            .filter_map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                Some((cells.get(1)?.parse().ok()?, cells.get(2)?.to_string()))
            })
            .collect();
        let expected: Vec<(u8, String)> = ALL.iter().map(|(c, n)| (*c, n.to_string())).collect();
        assert_eq!(rows, expected);
    }

    /// The top README's table lists the same codes and names, and both tables say what a
    /// re-promotion does: exit 0, "already promoted" (it once said exit 9, "already current").
    #[test]
    fn both_readmes_agree_on_codes_and_on_re_promotion() {
        let rows = |readme: &str| -> Vec<(u8, String, String)> {
            readme
                .lines()
                .filter_map(|l| {
                    let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                    Some((
                        cells.get(1)?.parse().ok()?,
                        cells.get(2)?.to_string(),
                        cells.get(3)?.to_string(),
                    ))
                })
                .collect()
        };
        let cli = rows(include_str!("../README.md"));
        let top = rows(include_str!("../../README.md"));
        let names = |rows: &[(u8, String, String)]| -> Vec<(u8, String)> {
            rows.iter().map(|(c, n, _)| (*c, n.clone())).collect()
        };
        assert_eq!(names(&top), names(&cli));
        for table in [&cli, &top] {
            assert!(table[0].2.contains("already promoted"), "{:?}", table[0]);
            let transition = &table[usize::from(INVALID_TRANSITION)];
            assert!(
                !transition.2.contains("already current") && transition.2.contains("rollback"),
                "{transition:?}"
            );
        }
    }

    /// A dependency that failed inside `--with-dependencies` exits with its own cause's code.
    #[test]
    fn a_failed_dependency_keeps_the_code_of_its_cause() {
        let env = floe_promotion::EnvName::new("staging").unwrap();
        let failed = |source: Error| Error::DependencyFailed {
            environment: env.clone(),
            artifact: "app:v1".into(),
            dependency: "config:v3".into(),
            source: Box::new(source),
        };
        assert_eq!(code(&failed(Error::not_found("x"))), NOT_FOUND);
        let missing = Error::DependencyMissing {
            environment: env.clone(),
            artifact: "migrations:v7".into(),
            missing: vec![],
        };
        assert_eq!(code(&missing), DEPENDENCY_MISSING);
        assert_eq!(code(&failed(missing)), DEPENDENCY_MISSING);
        assert!(
            failed(Error::not_found("x"))
                .to_string()
                .contains("config:v3")
        );
    }

    /// The numbers the design keeps from floe, variant by variant.
    #[test]
    fn design_numbers_are_kept() {
        use floe_promotion::gate::{GateResult, GateStatus};
        let env = floe_promotion::EnvName::new("prod").unwrap();
        let cases = [
            (Error::not_found("environment qa"), 3),
            (
                Error::Immutability {
                    repository: "r.example.com/a".into(),
                    tag: "v1-prod".into(),
                    existing: floe_promotion::Digest::of(b"a"),
                    attempted: floe_promotion::Digest::of(b"b"),
                },
                4,
            ),
            (
                Error::Unavailable {
                    registry: "r.example.com".into(),
                    message: "connection refused".into(),
                },
                5,
            ),
            (
                Error::GateFailed {
                    failed: vec![GateResult {
                        gate: "smoke".into(),
                        status: GateStatus::Failed,
                        message: "exit 1".into(),
                        duration_ms: 1,
                    }],
                },
                8,
            ),
            (
                Error::VersionNotPromoted {
                    artifact: "app".into(),
                    version: "v9".into(),
                    environment: env.clone(),
                },
                11,
            ),
            (
                Error::Signature {
                    digest: floe_promotion::Digest::of(b"a"),
                    message: "no trusted signature".into(),
                },
                6,
            ),
            (
                Error::Forbidden {
                    actor: "eve".into(),
                    action: "promote",
                    environment: env.clone(),
                    reason: "not an operator".into(),
                },
                12,
            ),
            (
                Error::Locked {
                    lock: Box::new(floe_promotion::state::EnvLock {
                        environment: env.clone(),
                        owner: "ops".into(),
                        reason: "incident".into(),
                        created: chrono::Utc::now(),
                        expires: None,
                    }),
                },
                13,
            ),
        ];
        for (error, code) in cases {
            assert_eq!(super::code(&error), code, "{error}");
        }
    }

    #[test]
    fn floe_numbers_are_kept() {
        assert_eq!(code(&Error::not_found("x")), 3);
        assert_eq!(
            code(&Error::InvalidTransition {
                from: "a".into(),
                to: "b".into(),
                reason: "r".into()
            }),
            9
        );
        assert_eq!(
            code(&Error::SeparationOfDuties {
                actor: "a".into(),
                reason: "r".into()
            }),
            14
        );
    }
}
