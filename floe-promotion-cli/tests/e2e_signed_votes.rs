//! End to end: signed approval votes with keys made by OpenSSH's `ssh-keygen`, environments in
//! OCI image-layout directories.
//!
//! - prod requires votes signed by a key of its `allowed_signers` file: an unsigned vote (with
//!   whatever --actor and --group), a key the file does not list, and `ssh-keygen` signatures
//!   over another request's message or another digest are refused (exit 6);
//! - `floe approve --sign-with` (Ed25519 key file) and a signature made by `ssh-keygen -Y sign`
//!   (ECDSA, group membership from the manifest) meet the quorum and promote;
//! - the exported approval events re-verify with `ssh-keygen -Y verify`, an independent
//!   implementation, and with `floe approvals verify`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{Workspace, image_layout};
use floe_promotion_cli::exit;
use floe_promotion_cli::output::Output;

fn ssh_keygen(args: &[&str], stdin: Option<&Path>) -> std::process::Output {
    let mut cmd = Command::new("ssh-keygen");
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    match stdin {
        Some(p) => cmd.stdin(std::fs::File::open(p).expect("stdin file")),
        None => cmd.stdin(Stdio::null()),
    };
    cmd.output()
        .expect("ssh-keygen (Debian's openssh-client; scripts/registry-deps.sh installs it)")
}

/// A new key without a passphrase at `dir/name` (`name.pub` beside it); its public line.
fn keygen(dir: &Path, name: &str, kind: &[&str]) -> String {
    let path = dir.join(name);
    let mut args = vec!["-q", "-N", "", "-C", name, "-f"];
    let p = path.to_str().unwrap();
    args.push(p);
    args.extend_from_slice(kind);
    let out = ssh_keygen(&args, None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(dir.join(format!("{name}.pub")))
        .unwrap()
        .trim()
        .to_string()
}

/// `ssh-keygen -Y sign` of `message` with the key at `key`; the armored signature's file.
fn ssh_sign(key: &Path, message: &str, dir: &Path, name: &str) -> PathBuf {
    let file = dir.join(name);
    std::fs::write(&file, message).unwrap();
    let out = ssh_keygen(
        &[
            "-Y",
            "sign",
            "-f",
            key.to_str().unwrap(),
            "-n",
            "floe-approval",
            file.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join(format!("{name}.sig"))
}

const MANIFEST: &str = r#"artifacts:
  promotion:
    environments:
      - name: dev
        repository: oci-layout:./registry/dev
      - name: staging
        repository: oci-layout:./registry/staging
      - name: prod
        repository: oci-layout:./registry/prod
        approval:
          signers: allowed_signers
          rules:
            - { name: review, required: 1, users: [bob] }
            - { name: release, required: 1, groups: [release] }
groups:
  release: [erin]
"#;

struct World {
    ws: Workspace,
    keys: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        let ws = Workspace::new(MANIFEST);
        let keys = tempfile::tempdir().unwrap();
        let bob = keygen(keys.path(), "bob", &["-t", "ed25519"]);
        let erin = keygen(keys.path(), "erin", &["-t", "ecdsa", "-b", "256"]);
        keygen(keys.path(), "mallory", &["-t", "ed25519"]);
        ws.write(
            "allowed_signers",
            &format!("bob namespaces=\"floe-approval\" {bob}\nerin {erin}\n"),
        );
        World { ws, keys }
    }

    fn key(&self, name: &str) -> String {
        self.keys.path().join(name).display().to_string()
    }

    /// `version` pushed into dev, promoted to staging, asked for prod; the request id.
    fn request(&self, version: &str, seed: u64) -> String {
        image_layout(&self.ws.join("registry/dev/app"), version, seed);
        let app = format!("app:{version}");
        self.ws
            .run(&[
                "promote", &app, "--from", "dev", "--to", "staging", "--actor", "ci",
            ])
            .ok();
        self.ws
            .run(&[
                "promote", &app, "--from", "staging", "--to", "prod", "--actor", "ci",
            ])
            .expect(exit::APPROVAL_PENDING);
        match self
            .ws
            .run(&["--output", "json", "approvals", "--status", "pending"])
            .ok()
            .output()
        {
            Output::Approvals { requests } => requests
                .iter()
                .find(|r| r.ticket.version.as_str() == version)
                .map(|r| r.id.to_string())
                .expect("a pending request"),
            other => panic!("not approvals: {other:?}"),
        }
    }

    fn message(&self, id: &str) -> String {
        self.ws
            .run(&["approvals", "message", id])
            .ok()
            .stdout
            .clone()
    }
}

#[test]
fn signed_votes_are_required_checked_and_reverify_with_ssh_keygen() {
    let w = World::new();
    let id = w.request("v1", 7);
    let other = w.request("v2", 8);

    // Unsigned, whatever identity is claimed.
    let line =
        w.ws.run(&["approve", &id, "--actor", "bob", "--group", "release"])
            .one_error_line(exit::SIGNATURE);
    assert!(line.contains("requires signed votes"), "{line}");
    // A key the file does not list.
    let line =
        w.ws.run(&["approve", &id, "--sign-with", &w.key("mallory")])
            .one_error_line(exit::SIGNATURE);
    assert!(line.contains("is not listed in"), "{line}");
    // bob's ssh-keygen signature over the other request's message.
    let elsewhere = ssh_sign(
        &w.keys.path().join("bob"),
        &w.message(&other),
        w.keys.path(),
        "other-request",
    );
    let line =
        w.ws.run(&["approve", &id, "--signature", elsewhere.to_str().unwrap()])
            .one_error_line(exit::SIGNATURE);
    assert!(line.contains("does not match this vote"), "{line}");
    // ... and over this request's message with another digest.
    let message = w.message(&id);
    let digest_line = message.lines().find(|l| l.starts_with("digest: ")).unwrap();
    let forged = message.replace(digest_line, &format!("digest: sha256:{}", "0".repeat(64)));
    let another_digest = ssh_sign(
        &w.keys.path().join("bob"),
        &forged,
        w.keys.path(),
        "other-digest",
    );
    let line =
        w.ws.run(&[
            "approve",
            &id,
            "--signature",
            another_digest.to_str().unwrap(),
        ])
        .one_error_line(exit::SIGNATURE);
    assert!(line.contains("does not match this vote"), "{line}");
    assert!(
        w.ws.history()
            .iter()
            .all(|e| e.record.kind != floe_promotion::history::EventKind::ApprovalDecided),
        "no refused vote is recorded"
    );

    // bob signs with his key file (floe's signer); erin with ssh-keygen (ECDSA), and her
    // group comes from the manifest: the second vote meets the quorum and promotes.
    let first =
        w.ws.run(&[
            "--output",
            "json",
            "approve",
            &id,
            "--sign-with",
            &w.key("bob"),
        ])
        .ok()
        .output();
    let Output::Approve(first) = first else {
        panic!("{first:?}")
    };
    assert_eq!(first.request.votes[0].actor.id, "bob");
    assert!(first.executed.is_none());
    let erin_sig = ssh_sign(
        &w.keys.path().join("erin"),
        &message,
        w.keys.path(),
        "erin-vote",
    );
    let second =
        w.ws.run(&[
            "--output",
            "json",
            "approve",
            &id,
            "--signature",
            erin_sig.to_str().unwrap(),
        ])
        .ok()
        .output();
    let Output::Approve(second) = second else {
        panic!("{second:?}")
    };
    assert_eq!(second.request.votes[1].actor.id, "erin");
    assert_eq!(
        second.request.votes[1].actor.groups,
        vec!["release".to_string()]
    );
    let record = second.executed.expect("the quorum promotes");

    // The exported events carry what ssh-keygen needs to verify each vote on its own.
    let export = w.ws.join("audit.jsonl");
    w.ws.run(&[
        "audit",
        "export",
        "--format",
        "jsonl",
        "--out",
        export.to_str().unwrap(),
    ])
    .ok();
    let mut checked = Vec::new();
    for line in std::fs::read_to_string(&export).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let Some(details) = find_details(&v) else {
            continue;
        };
        let (Some(signer), Some(message), Some(signature)) = (
            details.get("signer").and_then(|s| s.as_str()),
            details.get("signed_message").and_then(|s| s.as_str()),
            details.get("signature").and_then(|s| s.as_str()),
        ) else {
            continue;
        };
        assert!(
            message.contains(&format!("digest: {}", record.digest)),
            "{message}"
        );
        assert!(message.contains(&format!("request: {id}")), "{message}");
        let msg_file = w.keys.path().join(format!("{signer}.exported"));
        let sig_file = w.keys.path().join(format!("{signer}.exported.sig"));
        std::fs::write(&msg_file, message).unwrap();
        std::fs::write(&sig_file, signature).unwrap();
        let verify = |principal: &str, msg: &Path| {
            ssh_keygen(
                &[
                    "-Y",
                    "verify",
                    "-f",
                    w.ws.join("allowed_signers").to_str().unwrap(),
                    "-I",
                    principal,
                    "-n",
                    "floe-approval",
                    "-s",
                    sig_file.to_str().unwrap(),
                ],
                Some(msg),
            )
        };
        let ok = verify(signer, &msg_file);
        assert!(
            ok.status.success(),
            "ssh-keygen -Y verify of {signer}'s vote: {}{}",
            String::from_utf8_lossy(&ok.stdout),
            String::from_utf8_lossy(&ok.stderr)
        );
        // The same signature does not verify another vote.
        let tampered = w.keys.path().join(format!("{signer}.tampered"));
        std::fs::write(
            &tampered,
            message.replace("decision: approve", "decision: reject"),
        )
        .unwrap();
        assert!(!verify(signer, &tampered).status.success());
        checked.push(signer.to_string());
    }
    checked.sort();
    assert_eq!(checked, ["bob", "erin"]);

    // floe re-verifies them too; a signers file that drops bob's key makes that event fail.
    match w
        .ws
        .run(&["--output", "json", "approvals", "verify"])
        .ok()
        .output()
    {
        Output::VoteSignatures(v) => {
            assert_eq!(v.verified.len(), 2);
            assert!(v.failed.is_empty() && v.unsigned.is_empty());
        }
        other => panic!("{other:?}"),
    }
    let signers = std::fs::read_to_string(w.ws.join("allowed_signers")).unwrap();
    let without_bob: String = signers
        .lines()
        .filter(|l| !l.starts_with("bob "))
        .map(|l| {
            format!(
                "{l}\nbob {}\n",
                std::fs::read_to_string(w.keys.path().join("mallory.pub"))
                    .unwrap()
                    .trim()
            )
        })
        .collect();
    w.ws.write("allowed_signers", &without_bob);
    let run = w.ws.run(&["approvals", "verify"]);
    run.expect(exit::SIGNATURE);
    assert!(
        run.stdout.contains("FAILED event") && run.stdout.contains("vote of bob"),
        "{}",
        run.stdout
    );
}

/// The `details` object of an exported event, wherever the export nests it.
fn find_details(v: &serde_json::Value) -> Option<&serde_json::Map<String, serde_json::Value>> {
    match v {
        serde_json::Value::Object(m) => {
            if let Some(serde_json::Value::Object(d)) = m.get("details") {
                return Some(d);
            }
            m.values().find_map(find_details)
        }
        _ => None,
    }
}

/// An `ssh-agent -D` on a socket in `dir`, ended (by its own pid) when dropped.
struct Agent {
    child: std::process::Child,
    socket: PathBuf,
}

impl Agent {
    fn start(dir: &Path) -> Agent {
        let socket = dir.join("agent.sock");
        let child = Command::new("ssh-agent")
            .args(["-D", "-a", socket.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ssh-agent (openssh-client)");
        let started = std::time::Instant::now();
        while !socket.exists() {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(5),
                "ssh-agent did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Agent { child, socket }
    }

    fn add(&self, key: &Path) {
        let out = Command::new("ssh-add")
            .arg(key)
            .env("SSH_AUTH_SOCK", &self.socket)
            .stdin(Stdio::null())
            .output()
            .expect("ssh-add");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn votes_are_signed_by_ssh_agent_with_passphrase_protected_keys() {
    let w = World::new();
    // erin's key gets a passphrase: floe never reads it, the agent signs.
    let erin = w.keys.path().join("erin");
    let out = ssh_keygen(
        &[
            "-p",
            "-q",
            "-P",
            "",
            "-N",
            "correct horse",
            "-f",
            erin.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = w.request("v1", 9);
    let line =
        w.ws.run_env(
            &["approve", &id, "--sign-with", &w.key("erin")],
            &[("SSH_AUTH_SOCK", "")],
        )
        .one_error_line(exit::USAGE);
    assert!(line.contains("passphrase-protected"), "{line}");

    let agent = Agent::start(w.keys.path());
    let sock = agent.socket.to_str().unwrap();
    // `agent` picks the agent key the signers file lists: bob's (mallory's is not listed).
    agent.add(&w.keys.path().join("mallory"));
    agent.add(&w.keys.path().join("bob"));
    let run = w.ws.run_env(
        &["--output", "json", "approve", &id, "--sign-with", "agent"],
        &[("SSH_AUTH_SOCK", sock)],
    );
    let Output::Approve(first) = run.ok().output() else {
        panic!("{}", run.stdout)
    };
    assert_eq!(first.request.votes[0].actor.id, "bob");
    // The encrypted key file names the agent key to use; without the key in the agent it
    // is refused.
    let line =
        w.ws.run_env(
            &["approve", &id, "--sign-with", &w.key("erin")],
            &[("SSH_AUTH_SOCK", sock)],
        )
        .one_error_line(exit::USAGE);
    assert!(line.contains("ssh-agent does not hold this key"), "{line}");
    // ssh-add cannot ask for the passphrase without a terminal: load a decrypted copy, as
    // the user would after typing it.
    let plain = w.keys.path().join("erin-plain");
    std::fs::copy(&erin, &plain).unwrap();
    let out = ssh_keygen(
        &[
            "-p",
            "-q",
            "-P",
            "correct horse",
            "-N",
            "",
            "-f",
            plain.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    agent.add(&plain);
    let run = w.ws.run_env(
        &[
            "--output",
            "json",
            "approve",
            &id,
            "--sign-with",
            &format!("{}.pub", w.key("erin")),
        ],
        &[("SSH_AUTH_SOCK", sock)],
    );
    let Output::Approve(second) = run.ok().output() else {
        panic!("{}", run.stdout)
    };
    assert_eq!(second.request.votes[1].actor.id, "erin");
    assert!(second.executed.is_some(), "the quorum promotes");
    match w
        .ws
        .run(&["--output", "json", "approvals", "verify"])
        .ok()
        .output()
    {
        Output::VoteSignatures(v) => assert_eq!(v.verified.len(), 2),
        other => panic!("{other:?}"),
    }
}
