//! `floe notifications [--failed]` and `floe notifications retry`.

use floe_promotion::notify::{DeliveryQuery, DeliveryStatus};

use super::*;
use crate::output::RetryOutput;

pub(super) async fn run(g: &Global, a: NotificationsArgs) -> Result<(Option<Output>, u8)> {
    if let Some(NotificationsAction::Retry) = a.action {
        return retry(g).await;
    }
    let app = App::open(g, false, &[]).await?;
    let query = DeliveryQuery {
        status: a.failed.then_some(DeliveryStatus::Failed),
        ..Default::default()
    };
    let deliveries = app.store.deliveries.list(&query).await?;
    Ok((Some(Output::Notifications { deliveries }), exit::OK))
}

/// Delivers what is pending, then redelivers each failed delivery to its webhook (matched by
/// name), reading the event again from history. Exit 5 (unavailable) when some still fail.
async fn retry(g: &Global) -> Result<(Option<Output>, u8)> {
    let app = App::open(g, false, &[]).await?;
    // Events no delivery run has reached yet go first, in order, each to every notifier.
    app.manager.deliver_notifications().await?;
    let failed = app
        .store
        .deliveries
        .list(&DeliveryQuery {
            status: Some(DeliveryStatus::Failed),
            ..Default::default()
        })
        .await?;
    let mut out = RetryOutput {
        retried: vec![],
        skipped: vec![],
        still_failed: 0,
    };
    for outcome in failed {
        let Some(webhook) = app
            .webhooks
            .iter()
            .find(|w| floe_promotion::Notifier::name(w.as_ref()) == outcome.webhook)
        else {
            out.skipped.push(outcome);
            continue;
        };
        let events = app
            .store
            .history
            .query(&HistoryQuery {
                after_seq: Some(outcome.seq.saturating_sub(1)),
                limit: Some(1),
                order: Order::OldestFirst,
                ..Default::default()
            })
            .await?;
        let Some(event) = events.into_iter().find(|e| e.seq == outcome.seq) else {
            return Err(Error::not_found(format!(
                "event {} of the failed delivery to {}",
                outcome.seq, outcome.webhook
            )));
        };
        let redelivered = webhook.redeliver(&event).await?;
        if redelivered.status == DeliveryStatus::Failed {
            out.still_failed += 1;
        }
        out.retried.push(redelivered);
    }
    let code = if out.still_failed > 0 {
        exit::UNAVAILABLE
    } else {
        exit::OK
    };
    Ok((Some(Output::NotificationsRetry(out)), code))
}
