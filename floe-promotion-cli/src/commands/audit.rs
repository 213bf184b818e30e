//! `floe audit verify` and `floe audit export`.

use super::*;

pub(super) async fn verify(
    g: &Global,
    file: Option<std::path::PathBuf>,
) -> Result<(Option<Output>, u8)> {
    let (report, source) = match &file {
        Some(path) => (verify_export_file(path, true)?, path.display().to_string()),
        None => {
            let app = App::open(g, false, &[]).await?;
            (app.manager.verify().await?, app.state_name.clone())
        }
    };
    let code = if report.is_intact() {
        exit::OK
    } else {
        exit::INTEGRITY
    };
    Ok((
        Some(Output::Verify(VerifyOutput {
            intact: report.is_intact(),
            events: report.events,
            head: report.head,
            first_break: report.first_break,
            source,
        })),
        code,
    ))
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
