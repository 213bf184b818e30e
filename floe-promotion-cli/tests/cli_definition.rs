//! The command line's definition: clap's consistency checks over the whole tree, and the
//! subcommands whose arguments are defined late (`cli::Deferred`) described, listed and
//! parsed as if they were defined up front.

use clap::{CommandFactory, Parser};
use floe_promotion_cli::cli::{Cli, Command};

#[test]
fn the_whole_definition_passes_clap_checks() {
    Cli::command().debug_assert();
}

#[test]
fn each_subcommand_keeps_its_own_description() {
    let mut cmd = Cli::command();
    cmd.build();
    let about = |name: &str| {
        cmd.find_subcommand(name)
            .and_then(|c| c.get_about())
            .map(|a| a.to_string())
            .unwrap_or_default()
    };
    assert_eq!(
        about("promote"),
        "Promote NAME:VERSION from one environment to the next"
    );
    assert_eq!(
        about("keygen"),
        "Make a signing key pair for attestations: PATH.key (encrypted, cosign's format) and \
         PATH.pub (`--out PATH`, default `floe`); never overwrites"
    );
    for sub in cmd.get_subcommands() {
        let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
        // The arguments' structs are documented as "`floe <name>`"; the subcommand's own
        // description is what `floe --help` and `floe <name> --help` show.
        assert!(
            !about.is_empty() && !about.starts_with("`floe"),
            "{}: {about:?}",
            sub.get_name()
        );
    }
}

#[test]
fn a_late_defined_subcommand_has_its_arguments_and_the_global_ones() {
    let mut cmd = Cli::command();
    cmd.build();
    let promote = cmd.find_subcommand("promote").expect("promote");
    let ids: Vec<&str> = promote
        .get_arguments()
        .map(|a| a.get_id().as_str())
        .collect();
    for id in [
        "reference",
        "from",
        "to",
        "dry_run",
        "override_lock",
        "manifest",
        "state",
        "output",
    ] {
        assert!(ids.contains(&id), "promote lacks {id}: {ids:?}");
    }
}

#[test]
fn a_late_defined_subcommand_parses_as_before() {
    let cli = Cli::try_parse_from([
        "floe",
        "--state",
        "s.db",
        "promote",
        "app:v1",
        "--from",
        "dev",
        "--to",
        "staging",
        "--dry-run",
        "--output",
        "json",
    ])
    .expect("parses");
    assert_eq!(cli.global.state.to_str(), Some("s.db"));
    assert_eq!(
        cli.global.output,
        floe_promotion_cli::cli::OutputFormat::Json
    );
    let Command::Promote(args) = cli.command else {
        panic!("not promote: {:?}", cli.command)
    };
    assert_eq!(
        (
            args.0.reference.as_str(),
            args.0.from.as_str(),
            args.0.to.as_str(),
            args.0.dry_run
        ),
        ("app:v1", "dev", "staging", true)
    );
    let missing = Cli::try_parse_from(["floe", "promote", "app:v1"]).unwrap_err();
    assert_eq!(
        missing.kind(),
        clap::error::ErrorKind::MissingRequiredArgument
    );
    let unknown = Cli::try_parse_from(["floe", "promote", "app:v1", "--frm", "dev"]).unwrap_err();
    assert_eq!(unknown.kind(), clap::error::ErrorKind::UnknownArgument);
}
