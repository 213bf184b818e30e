//! `floe`: see the crate documentation of `floe_promotion_cli`.

fn main() -> std::process::ExitCode {
    floe_promotion_cli::run()
}
