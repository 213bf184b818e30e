//! `floe envs`: the environments, in order, with their gates and rules.

use super::*;

pub(super) async fn run(g: &Global) -> Result<(Option<Output>, u8)> {
    let app = App::open(g, false, &[]).await?;
    let now = chrono::Utc::now();
    let settings = app.config.settings();
    let environments = settings
        .environments
        .iter()
        .enumerate()
        .map(|(position, e)| EnvOutput {
            name: e.name.clone(),
            position,
            repository: e.repository.as_ref().map(ToString::to_string),
            gates: app
                .manager
                .gates(&e.name)
                .iter()
                .map(|g| g.name().to_string())
                .collect(),
            gate_timeout_seconds: e.gate_timeout.unwrap_or(settings.default_timeout).as_secs(),
            allowed_operators: e.authorization.allowed_operators.clone(),
            allowed_groups: e.authorization.allowed_groups.clone(),
            separation_of_duties: e.authorization.separation_of_duties,
            version_pattern: e
                .policy
                .version_pattern
                .as_ref()
                .map(|r| r.as_str().to_string()),
            minimum_soak_seconds: e.policy.minimum_soak.map(|d| d.as_secs()),
            allowed_sources: e.policy.allowed_sources.clone(),
            freeze_windows: e
                .freeze_windows
                .iter()
                .map(|w| match w {
                    floe_promotion::config::FreezeWindow::Absolute { start, end, reason } => {
                        format!("{} to {}: {reason}", start.to_rfc3339(), end.to_rfc3339())
                    }
                    floe_promotion::config::FreezeWindow::Weekly {
                        days,
                        start,
                        end,
                        reason,
                    } => {
                        format!("weekly {days:?} {start}-{end} UTC: {reason}")
                    }
                })
                .collect(),
            windows: e
                .windows
                .iter()
                .map(|w| {
                    if w.reason.trim().is_empty() {
                        w.describe()
                    } else {
                        format!("{}: {}", w.describe(), w.reason)
                    }
                })
                .collect(),
            window: WindowOutput::of(&e.window_state(now)),
        })
        .collect();
    Ok((Some(Output::Envs { environments }), exit::OK))
}
