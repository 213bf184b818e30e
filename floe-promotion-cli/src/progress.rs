//! A progress bar of blob copies on stderr, shown only when stderr is a terminal.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

use floe_promotion::Digest;
use floe_promotion::registry::TransferObserver;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// One bar per blob being uploaded or streamed.
#[derive(Debug, Clone)]
pub(crate) struct Progress {
    observer: Arc<Bars>,
}

#[derive(Debug)]
struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<Digest, ProgressBar>>,
}

impl Progress {
    pub(crate) fn new() -> Self {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Progress {
            observer: Arc::new(Bars {
                multi: MultiProgress::with_draw_target(target),
                bars: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub(crate) fn observer(&self) -> Arc<dyn TransferObserver> {
        self.observer.clone()
    }
}

impl TransferObserver for Bars {
    fn blob_started(&self, digest: &Digest, size: u64) {
        let bar = self.multi.add(ProgressBar::new(size));
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_message(format!("sha256:{}", digest.short()));
        if let Ok(mut bars) = self.bars.lock() {
            bars.insert(digest.clone(), bar);
        }
    }

    fn blob_progress(&self, digest: &Digest, bytes: u64) {
        if let Ok(bars) = self.bars.lock()
            && let Some(bar) = bars.get(digest)
        {
            bar.inc(bytes);
        }
    }

    fn blob_finished(&self, digest: &Digest) {
        if let Ok(mut bars) = self.bars.lock()
            && let Some(bar) = bars.remove(digest)
        {
            bar.finish_and_clear();
        }
    }
}

/// Clears the bars when the command ends.
pub(crate) struct Finish<'a>(pub(crate) Option<&'a Progress>);

impl Finish<'_> {
    pub(crate) fn finish(self) {
        if let Some(p) = self.0 {
            let _ = p.observer.multi.clear();
        }
    }
}
