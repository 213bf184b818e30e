//! `floe audit verify` (with `--checkpoints`), `floe audit export` and `floe audit checkpoint`.

use floe_promotion::checkpoint::{take_checkpoint, verify_checkpoints};
use floe_promotion::config::CheckpointLocation;
use floe_promotion_oci::CosignKeyVerifier;

use super::*;
use crate::output::CheckpointsOutput;

pub(super) async fn verify(
    g: &Global,
    file: Option<std::path::PathBuf>,
    checkpoints: Option<(String, std::path::PathBuf)>,
) -> Result<(Option<Output>, u8)> {
    // Inputs first: the key and the location, before the state is opened.
    let checkpoints = match checkpoints {
        Some((location, key)) => {
            let location = CheckpointLocation::parse("--checkpoints", &location, None)?;
            if let CheckpointLocation::File(path) = &location
                && !path.is_file()
            {
                return Err(Error::not_found(format!(
                    "checkpoints file {} (--checkpoints): no such file; give the file floe audit checkpoint --to wrote",
                    Excerpt::path(path)
                )));
            }
            Some((location, CosignKeyVerifier::from_file(&key)?))
        }
        None => None,
    };
    let (report, source, checked) = match &file {
        Some(path) => (
            verify_export_file(path, true)?,
            path.display().to_string(),
            None,
        ),
        None => {
            let app = App::open(g, false, &[]).await?;
            match checkpoints {
                None => (app.manager.verify().await?, app.state_name.clone(), None),
                Some((location, key)) => {
                    let store = crate::checkpoints::store(&location, app.registry.clone());
                    let listed = store.list().await?;
                    if listed.is_empty() {
                        return Err(Error::not_found(format!(
                            "signed checkpoints in {location} (--checkpoints): there are none; take one with floe audit checkpoint --to {location}"
                        )));
                    }
                    let report =
                        verify_checkpoints(app.store.history.as_ref(), &listed, &key).await?;
                    let out = CheckpointsOutput::of(
                        &report,
                        location.to_string(),
                        floe_promotion::attest::KeyVerifier::fingerprint(&key).to_string(),
                    );
                    let intact = report.is_intact();
                    (report.chain, app.state_name.clone(), Some((out, intact)))
                }
            }
        }
    };
    let intact = report.is_intact() && checked.as_ref().is_none_or(|(_, ok)| *ok);
    let code = if intact { exit::OK } else { exit::INTEGRITY };
    Ok((
        Some(Output::Verify(VerifyOutput {
            intact,
            events: report.events,
            head: report.head,
            first_break: report.first_break,
            source,
            checkpoints: checked.map(|(out, _)| out),
        })),
        code,
    ))
}

/// `floe audit checkpoint [--to REF]`: signs the head with the attestation key and stores it.
pub(super) async fn checkpoint(g: &Global, to: Option<String>) -> Result<(Option<Output>, u8)> {
    let given = to
        .as_deref()
        .map(|t| CheckpointLocation::parse("--to", t, None))
        .transpose()?;
    let app = App::open(g, false, &[]).await?;
    let settings = app.config.settings();
    let location = match given {
        Some(l) => l,
        None => settings
            .attestation
            .as_ref()
            .and_then(|a| a.checkpoints.as_ref())
            .map(|c| c.to.clone())
            .ok_or_else(|| Error::Config {
                file: settings.source.clone(),
                location: None,
                message: "where should the checkpoint go? give --to FILE, --to oci://HOST/PATH or --to oci-layout:DIR, or set artifacts.promotion.attestation.checkpoints.to".into(),
            })?,
    };
    let signer = app.signer()?;
    let key = crate::checkpoints::own_key(signer.as_ref())?;
    let store = crate::checkpoints::store(&location, app.registry.clone());
    let taken = take_checkpoint(
        app.store.history.as_ref(),
        store.as_ref(),
        signer.as_ref(),
        key.as_ref(),
        chrono::Utc::now(),
    )
    .await?;
    Ok((Some(Output::Checkpoint(taken)), exit::OK))
}

pub(super) async fn export(g: &Global, a: ExportArgs) -> Result<(Option<Output>, u8)> {
    let environment = a.env.as_deref().map(EnvName::new).transpose()?;
    let q = HistoryQuery {
        since: a
            .since
            .as_deref()
            .map(|s| parse_time("--since", s))
            .transpose()?,
        until: a
            .until
            .as_deref()
            .map(|s| parse_time("--until", s))
            .transpose()?,
        environment,
        ..Default::default()
    };
    let app = App::open(g, false, &q.environment.iter().collect::<Vec<_>>()).await?;
    let format = match a.format {
        cli::ExportFormatArg::Jsonl => ExportFormat::Jsonl,
        cli::ExportFormatArg::Csv => ExportFormat::Csv,
    };
    let name = match format {
        ExportFormat::Jsonl => "jsonl",
        _ => "csv",
    };
    match &a.out {
        Some(path) => {
            // Write to a temporary file next to the target and rename, so a failed
            // export never leaves a half-written file under the requested name.
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let tmp = dir.join(format!(
                ".{}.floe-tmp-{}",
                path.file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default(),
                std::process::id()
            ));
            let file = File::create(&tmp)
                .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
            let mut w = std::io::BufWriter::new(file);
            let result = app
                .store
                .history
                .export(&q, format, &mut w)
                .await
                .and_then(|n| {
                    w.flush()
                        .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
                    Ok(n)
                });
            let n = match result {
                Ok(n) => n,
                Err(e) => {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(e);
                }
            };
            std::fs::rename(&tmp, path).map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                Error::io(format!("writing {}", path.display()), e)
            })?;
            Ok((
                Some(Output::Export {
                    format: name.into(),
                    events: n,
                    out: path.display().to_string(),
                }),
                exit::OK,
            ))
        }
        None => {
            let mut out = std::io::BufWriter::new(std::io::stdout());
            app.store.history.export(&q, format, &mut out).await?;
            out.flush()
                .map_err(|e| Error::io("writing the export to standard output", e))?;
            Ok((None, exit::OK))
        }
    }
}
