//! The command-line surface (clap derive).

use std::path::PathBuf;

use clap::{ArgMatches, Args, FromArgMatches, Parser, Subcommand, ValueEnum};

/// Promote immutable OCI artifacts through ordered environments.
///
/// Every decision is made by the floe-promotion library; this command parses, wires and prints.
#[derive(Debug, Parser)]
#[command(name = "floe", version, about, long_about = None)]
pub struct Cli {
    /// Global options.
    #[command(flatten)]
    pub global: Global,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// The manifest describing the environments.
    #[arg(
        long,
        global = true,
        default_value = "manifest.yaml",
        env = "FLOE_MANIFEST"
    )]
    pub manifest: PathBuf,
    /// The state (audit trail, locks, leases): a SQLite file, or a PostgreSQL database URL
    /// (`postgres://user:password@host/db`, `?sslmode=require` for TLS) shared by promoters
    /// on many machines.
    #[arg(
        long,
        global = true,
        default_value = ".floe/state.db",
        env = "FLOE_STATE",
        hide_env_values = true
    )]
    pub state: PathBuf,
    /// Who acts (default: $FLOE_ACTOR, then $USER).
    #[arg(long, global = true)]
    pub actor: Option<String>,
    /// Groups of the actor, for authorization rules (repeatable; default: $FLOE_ACTOR_GROUPS,
    /// comma-separated).
    #[arg(long = "group", global = true)]
    pub groups: Vec<String>,
    /// Output format: text, or one JSON document (errors too; `audit export` without `--out`
    /// prints the export itself).
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Docker config file for registry credentials (default: $DOCKER_CONFIG/config.json, then
    /// ~/.docker/config.json).
    #[arg(long, global = true, env = "FLOE_DOCKER_CONFIG")]
    pub docker_config: Option<PathBuf>,
}

/// The arguments of a subcommand, defined only when that subcommand is the one parsed or
/// shown, with clap's [`Command::defer`](clap::Command::defer): clap otherwise builds every
/// argument of every subcommand before it parses, about 0.2 ms of each command's start.
/// Only for subcommands without subcommands of their own: clap's `help` subcommand and the
/// completions list nested subcommands from what is built before parsing.
#[derive(Debug, Clone)]
pub struct Deferred<T>(pub T);

impl<T: Args> Args for Deferred<T> {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        cmd.defer(|cmd| keep_about(cmd, T::augment_args))
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        cmd.defer(|cmd| keep_about(cmd, T::augment_args_for_update))
    }

    fn group_id() -> Option<clap::Id> {
        T::group_id()
    }
}

/// Adds arguments with `augment` and keeps the command's description: the derived arguments
/// describe their struct, but the subcommand keeps its own (clap's derive sets it after the
/// arguments, which now come later).
fn keep_about(cmd: clap::Command, augment: fn(clap::Command) -> clap::Command) -> clap::Command {
    use clap::builder::Resettable;
    let kept = |text: Option<&clap::builder::StyledStr>| {
        text.cloned().map_or(Resettable::Reset, Resettable::Value)
    };
    let (about, long_about) = (kept(cmd.get_about()), kept(cmd.get_long_about()));
    augment(cmd).about(about).long_about(long_about)
}

impl<T: FromArgMatches> FromArgMatches for Deferred<T> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches(matches).map(Deferred)
    }

    fn from_arg_matches_mut(matches: &mut ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches_mut(matches).map(Deferred)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(matches)
    }

    fn update_from_arg_matches_mut(&mut self, matches: &mut ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches_mut(matches)
    }
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Lines for people.
    Text,
    /// One JSON document (errors too).
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Promote NAME:VERSION from one environment to the next.
    Promote(Deferred<PromoteArgs>),
    /// Roll an environment back to a version it ran before.
    Rollback(Deferred<RollbackArgs>),
    /// Blue-green: move the pointer to the staged preview, or back to the previous slot
    /// with --back.
    Switch(Deferred<SwitchArgs>),
    /// What runs where: version, digest, since, by whom, locks.
    Status(Deferred<StatusArgs>),
    /// The audit trail, newest first.
    History(Deferred<HistoryArgs>),
    /// Lock an environment: promotions and rollbacks into it are refused.
    Lock(Deferred<LockArgs>),
    /// Unlock an environment.
    Unlock(Deferred<UnlockArgs>),
    /// Approval requests: list them, or `execute ID` to run an approved one.
    Approvals(ApprovalsArgs),
    /// Approve an approval request; the promotion runs when the quorum is met.
    Approve(Deferred<ApproveArgs>),
    /// Reject an approval request, for good.
    Reject(Deferred<RejectArgs>),
    /// The promotion leases in force, or break one left by a promoter that died.
    #[command(subcommand)]
    Lease(LeaseCommand),
    /// The environments, in order, with their gates and rules.
    Envs,
    /// Verify or export the audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Attach test or policy evidence to the digest of NAME:VERSION in an environment.
    Attest(Deferred<AttestArgs>),
    /// Automatic promotion: one pass over the environments with `auto_promote`, or a
    /// reconciler that runs a pass on an interval with --watch.
    Auto(Deferred<AutoArgs>),
    /// Revoke a digest everywhere: NAME@sha256:... (audited; promotion and rollback to it are
    /// refused until `unrevoke`).
    Revoke(Deferred<RevokeArgs>),
    /// Lift the revocation of NAME@sha256:... (audited).
    Unrevoke(Deferred<RevokeArgs>),
    /// The revoked digests.
    Revocations,
    /// Check what an admission controller would: a promotion attestation on IMAGE@DIGEST
    /// signed by --key, saying it was promoted to --env, recent enough, not revoked since.
    Verify(Deferred<VerifyArgs>),
    /// Make a signing key pair for attestations: PATH.key (encrypted, cosign's format) and
    /// PATH.pub (`--out PATH`, default `floe`); never overwrites.
    Keygen(Deferred<KeygenArgs>),
    /// Canary releases: advance or abort the canary of an environment, or list them.
    #[command(subcommand)]
    Canary(CanaryCommand),
    /// Hold automatic promotion into an environment (`floe hold ENV --reason`), release your
    /// hold (`floe hold release ENV --reason`), or list the holds (`floe hold list`).
    Hold(HoldArgs),
    /// Webhook delivery outcomes; `retry` redelivers the failed ones.
    Notifications(NotificationsArgs),
    /// Serve the HTTP API, the web dashboard and metrics until SIGTERM or SIGINT (requests
    /// under way finish first).
    Serve(Deferred<ServeArgs>),
    /// Print shell completions.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// `floe serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// How long requests under way may take to finish after SIGTERM (e.g. 30s).
    #[arg(long, default_value = "30s")]
    pub shutdown_grace: String,
}

/// `floe promote`.
#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// The artifact and version, NAME:VERSION.
    pub reference: String,
    /// Source environment.
    #[arg(long)]
    pub from: String,
    /// Target environment.
    #[arg(long)]
    pub to: String,
    /// Check everything and show what would be written, without writing.
    #[arg(long)]
    pub dry_run: bool,
    /// Why (recorded; required with --override-lock and --override-window).
    #[arg(long)]
    pub reason: Option<String>,
    /// Break-glass: promote although the target is locked (needs --reason).
    #[arg(long)]
    pub override_lock: bool,
    /// Break-glass: promote although the target's promotion window is closed (needs
    /// --reason; recorded as window_overridden).
    #[arg(long)]
    pub override_window: bool,
    /// Promote the dependencies the target lacks first, in dependency order, each through
    /// its own checks and gates, as one recorded group; with --dry-run, plan each step.
    #[arg(long)]
    pub with_dependencies: bool,
}

/// `floe rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The environment to roll back.
    #[arg(long)]
    pub env: String,
    /// The version to return to: VERSION, or NAME:VERSION when the environment runs several
    /// artifacts.
    #[arg(long)]
    pub to: String,
    /// Why (required).
    #[arg(long)]
    pub reason: String,
    /// Check everything and show what would be written, without writing.
    #[arg(long)]
    pub dry_run: bool,
    /// Break-glass: roll back although the environment is locked.
    #[arg(long)]
    pub override_lock: bool,
}

/// `floe switch`.
#[derive(Debug, Args)]
pub struct SwitchArgs {
    /// The blue-green environment.
    pub env: String,
    /// The artifact; needed only when several artifacts are released there by blue-green.
    #[arg(long)]
    pub artifact: Option<String>,
    /// Switch back to the previous slot (the instant rollback; needs --reason, runs no gates).
    #[arg(long)]
    pub back: bool,
    /// Why (recorded; required with --back and --override-lock).
    #[arg(long)]
    pub reason: Option<String>,
    /// Check everything and show what would be switched, without writing.
    #[arg(long)]
    pub dry_run: bool,
    /// Break-glass: switch although the environment is locked (needs --reason).
    #[arg(long)]
    pub override_lock: bool,
}

/// `floe status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this environment.
    #[arg(long)]
    pub env: Option<String>,
}

/// `floe history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Only events of this environment.
    #[arg(long)]
    pub env: Option<String>,
    /// Only events of NAME or NAME:VERSION.
    #[arg(long)]
    pub artifact: Option<String>,
    /// At most this many events (newest first).
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

/// `floe lock`.
#[derive(Debug, Args)]
pub struct LockArgs {
    /// The environment.
    pub env: String,
    /// Why.
    #[arg(long)]
    pub reason: String,
    /// Lift the lock by itself after this long (e.g. 2h, 30m).
    #[arg(long)]
    pub expires: Option<String>,
}

/// `floe unlock`.
#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// The environment.
    pub env: String,
    /// Why.
    #[arg(long)]
    pub reason: Option<String>,
}

/// `floe approvals`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ApprovalsArgs {
    /// Run an approved request whose execution was blocked or interrupted.
    #[command(subcommand)]
    pub action: Option<ApprovalsAction>,
    /// Only requests into this environment.
    #[arg(long)]
    pub env: Option<String>,
    /// Only requests in this state: pending, approved, executing, executed, rejected, expired.
    #[arg(long)]
    pub status: Option<String>,
}

/// `floe approvals execute`.
#[derive(Debug, Subcommand)]
pub enum ApprovalsAction {
    /// Run an approved request now (locks and gates apply again).
    Execute {
        /// The request id.
        id: String,
    },
    /// Print the exact message a signed vote on a request signs (to sign it elsewhere with
    /// `ssh-keygen -Y sign -n floe-approval`, then `floe approve ID --signature FILE`).
    Message {
        /// The request id.
        id: String,
        /// The message of a rejection rather than an approval.
        #[arg(long)]
        reject: bool,
    },
    /// Re-verify every signed approval vote in the audit trail against the allowed_signers
    /// file of its environment; exits 6 (signature) naming each event that fails.
    Verify,
}

/// `floe notifications`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct NotificationsArgs {
    /// Redeliver the failed ones.
    #[command(subcommand)]
    pub action: Option<NotificationsAction>,
    /// Only the deliveries that failed (and wait for `floe notifications retry`).
    #[arg(long)]
    pub failed: bool,
}

/// `floe notifications retry`.
#[derive(Debug, Subcommand)]
pub enum NotificationsAction {
    /// Deliver what is pending, then redeliver every failed delivery of a configured webhook
    /// (each event read again from history) and record the new outcome; exits 5
    /// (unavailable) when some still fail.
    Retry,
}

/// `floe approve`.
#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// The request id.
    pub id: String,
    /// A comment, recorded with the vote.
    #[arg(long)]
    pub comment: Option<String>,
    /// Sign the vote (required where the environment's approval has `signers`): an OpenSSH
    /// private key file, a public key file whose private key ssh-agent holds, or `agent`
    /// (the first agent key the signers file lists). The vote's identity is the key's
    /// principal; --actor and --group are not used.
    #[arg(long, value_name = "KEY", conflicts_with = "signature")]
    pub sign_with: Option<String>,
    /// A signature made elsewhere over `floe approvals message ID` (for example
    /// `ssh-keygen -Y sign -f KEY -n floe-approval`): the `.sig` file.
    #[arg(long, value_name = "FILE")]
    pub signature: Option<std::path::PathBuf>,
}

/// `floe reject`.
#[derive(Debug, Args)]
pub struct RejectArgs {
    /// The request id.
    pub id: String,
    /// Why (required, recorded).
    #[arg(long)]
    pub reason: String,
    /// Sign the vote, as for `floe approve --sign-with`.
    #[arg(long, value_name = "KEY", conflicts_with = "signature")]
    pub sign_with: Option<String>,
    /// A signature made elsewhere over `floe approvals message ID --reject`.
    #[arg(long, value_name = "FILE")]
    pub signature: Option<std::path::PathBuf>,
}

/// `floe lease`.
#[derive(Debug, Subcommand)]
pub enum LeaseCommand {
    /// The promotion leases in force: environment, holder, process, expiry.
    List,
    /// Remove the promotion lease of an environment (audited). Refused while the holder's
    /// process is still running on this machine, unless --force.
    Break(LeaseBreakArgs),
}

/// `floe lease break`.
#[derive(Debug, Args)]
pub struct LeaseBreakArgs {
    /// The environment.
    pub env: String,
    /// Why (required, recorded).
    #[arg(long)]
    pub reason: String,
    /// Break-glass: break it even though its holder's process is still running here.
    #[arg(long)]
    pub force: bool,
}

/// `floe audit`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Exit 0 when the audit chain is intact, else name the first bad event.
    Verify {
        /// Verify a JSON Lines export instead of the state file.
        #[arg(long, conflicts_with = "checkpoints")]
        file: Option<PathBuf>,
        /// Also prove the chain still holds every head checkpointed there (a file,
        /// oci://HOST/PATH or oci-layout:DIR); fails naming the checkpoint when history was
        /// rewritten below it.
        #[arg(long, value_name = "REF", requires = "key")]
        checkpoints: Option<String>,
        /// The public key (cosign.pub) the checkpoints must be signed with.
        #[arg(long, value_name = "FILE", requires = "checkpoints")]
        key: Option<PathBuf>,
    },
    /// Export the audit trail.
    Export(ExportArgs),
    /// Sign the chain's head (sequence, hash, time) with the attestation key and store the
    /// checkpoint outside the state.
    Checkpoint {
        /// Where: a file, oci://HOST/PATH or oci-layout:DIR (default:
        /// attestation.checkpoints.to in the manifest).
        #[arg(long, value_name = "REF")]
        to: Option<String>,
    },
}

/// `floe audit export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// jsonl or csv.
    #[arg(long, value_enum)]
    pub format: ExportFormatArg,
    /// Events at or after this time (RFC 3339, or a date YYYY-MM-DD).
    #[arg(long)]
    pub since: Option<String>,
    /// Events before this time (RFC 3339, or a date YYYY-MM-DD).
    #[arg(long)]
    pub until: Option<String>,
    /// Only events of this environment.
    #[arg(long)]
    pub env: Option<String>,
    /// Write to this file instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormatArg {
    /// JSON Lines, verifiable with `floe audit verify --file`.
    Jsonl,
    /// CSV with a header row.
    Csv,
}

/// `floe attest`.
#[derive(Debug, Args)]
pub struct AttestArgs {
    /// The artifact and version, NAME:VERSION.
    pub reference: String,
    /// The environment whose copy of the artifact gets the evidence.
    #[arg(long)]
    pub env: String,
    /// What the evidence attests.
    #[arg(long, value_enum)]
    pub kind: EvidenceKindArg,
    /// The verdict.
    #[arg(long, value_enum)]
    pub status: EvidenceStatusArg,
    /// A report to attach (JSON is kept as JSON, anything else as text; at most 1 MiB).
    #[arg(long)]
    pub file: Option<PathBuf>,
}

/// Evidence kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EvidenceKindArg {
    /// Test results.
    Tests,
    /// A policy evaluation.
    Policy,
}

/// Evidence verdicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EvidenceStatusArg {
    /// Passed.
    Passed,
    /// Failed.
    Failed,
}

/// `floe auto`.
#[derive(Debug, Args)]
pub struct AutoArgs {
    /// Only promotions into this environment.
    #[arg(long)]
    pub env: Option<String>,
    /// Show what a pass would promote; record and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Keep running: a pass every --interval until SIGTERM or SIGINT, which stop it after the
    /// promotion under way (exit 0).
    #[arg(long)]
    pub watch: bool,
    /// Time between passes with --watch (e.g. 30s, 5m).
    #[arg(long, default_value = "30s", requires = "watch")]
    pub interval: String,
}

/// `floe hold`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct HoldArgs {
    /// Release a hold, or list the holds.
    #[command(subcommand)]
    pub action: Option<HoldAction>,
    /// The environment to hold.
    pub env: Option<String>,
    /// Why (required, recorded).
    #[arg(long)]
    pub reason: Option<String>,
}

/// `floe hold release` and `floe hold list`.
#[derive(Debug, Subcommand)]
pub enum HoldAction {
    /// Release your hold on an environment (or another holder's with --holder).
    Release {
        /// The environment.
        env: String,
        /// Why (required, recorded).
        #[arg(long)]
        reason: String,
        /// Release this holder's hold instead of your own (audited).
        #[arg(long)]
        holder: Option<String>,
    },
    /// The holds, by environment.
    List {
        /// Only this environment.
        #[arg(long)]
        env: Option<String>,
    },
}

/// `floe canary`.
#[derive(Debug, Subcommand)]
pub enum CanaryCommand {
    /// Move the canary to its next step after re-running the environment's gates; at 100 the
    /// pointer moves.
    Advance {
        /// The environment.
        env: String,
        /// The artifact (needed when canaries of several artifacts run there).
        #[arg(long)]
        artifact: Option<String>,
    },
    /// End the canary: the pointer stays, `canary-<env>` goes back to the stable digest.
    Abort {
        /// The environment.
        env: String,
        /// Why (required, recorded).
        #[arg(long)]
        reason: String,
        /// The artifact (needed when canaries of several artifacts run there).
        #[arg(long)]
        artifact: Option<String>,
    },
    /// The canaries that run: version, digest, step and weight.
    List {
        /// Only this environment.
        #[arg(long)]
        env: Option<String>,
    },
}

/// `floe revoke` and `floe unrevoke`.
#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// The artifact and digest, `NAME@sha256:<hex>`.
    pub reference: String,
    /// Why (required, recorded).
    #[arg(long)]
    pub reason: String,
}

/// `floe verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The image by digest: `registry.example.com/floe/prod/app@sha256:<hex>` (or
    /// `oci-layout:DIR/app@sha256:<hex>`), or `NAME@sha256:<hex>` for the artifact's
    /// repository in --env as the manifest configures it.
    pub image: String,
    /// The environment the digest must have been promoted to.
    #[arg(long)]
    pub env: String,
    /// The public key that signs floe's attestations (`floe.pub`, `cosign.pub`).
    #[arg(long)]
    pub key: PathBuf,
    /// The oldest promotion attestation accepted, e.g. `30d`, `12h` (default: any age).
    #[arg(long)]
    pub max_age: Option<String>,
}

/// `floe keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the pair: PATH.key and PATH.pub (`--out`, as `audit export` names its
    /// file: `--output` is the output format).
    #[arg(long = "out", default_value = "floe")]
    pub out: PathBuf,
    /// The environment variable holding the password that encrypts the private key.
    #[arg(long)]
    pub password_env: String,
}
