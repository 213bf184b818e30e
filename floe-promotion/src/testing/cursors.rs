//! Conformance suite of [`CursorStore`]: one public async function per sentence of its
//! contract. Run it with [`cursor_conformance!`](crate::cursor_conformance).

use std::sync::Arc;

use crate::notify::CursorStore;

/// `cursor` is 0 for a consumer never seen.
pub async fn cursor_starts_at_zero(cursors: Arc<dyn CursorStore>) {
    assert_eq!(cursors.cursor("never-seen").await.expect("cursor"), 0);
}

/// `advance` moves a consumer's cursor from `from` to `to` only when it is `from` now and
/// `to > from`, and says whether it moved; a stale `from` moves nothing; consumers are
/// independent.
pub async fn advance_is_compare_and_set(cursors: Arc<dyn CursorStore>) {
    assert!(cursors.advance("chat", 0, 3).await.expect("advance"));
    assert_eq!(cursors.cursor("chat").await.expect("cursor"), 3);
    assert!(
        !cursors.advance("chat", 0, 5).await.expect("stale"),
        "stale from"
    );
    assert!(
        !cursors.advance("chat", 3, 3).await.expect("same"),
        "to == from"
    );
    assert!(
        !cursors.advance("chat", 3, 2).await.expect("back"),
        "backwards"
    );
    assert_eq!(cursors.cursor("chat").await.expect("cursor"), 3);
    assert!(cursors.advance("chat", 3, 4).await.expect("advance"));
    assert_eq!(cursors.cursor("chat").await.expect("cursor"), 4);
    assert_eq!(cursors.cursor("webhook").await.expect("cursor"), 0);
}

/// Concurrent `advance` calls from the same cursor value: exactly one moves it.
pub async fn concurrent_advance_one_winner(cursors: Arc<dyn CursorStore>) {
    let tasks: Vec<_> = (1..=8u64)
        .map(|i| {
            let cursors = cursors.clone();
            tokio::spawn(async move { cursors.advance("race", 0, i).await })
        })
        .collect();
    let mut winners = 0;
    for t in tasks {
        if t.await.expect("task").expect("advance") {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
    assert!(cursors.cursor("race").await.expect("cursor") > 0);
}

/// Runs the [`CursorStore`] conformance suite, one `#[tokio::test]` per case. `$setup` is an
/// expression (awaited) giving `(Arc<dyn CursorStore>, guard)`; the guard lives as long as the
/// case.
#[macro_export]
macro_rules! cursor_conformance {
    ($setup:expr) => {
        $crate::cursor_conformance!(@cases $setup;
            cursor_starts_at_zero,
            advance_is_compare_and_set,
            concurrent_advance_one_winner
        );
    };
    (@cases $setup:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (cursors, guard) = $setup.await;
                $crate::testing::cursors::$case(cursors).await;
                drop(guard);
            }
        )*
    };
}
