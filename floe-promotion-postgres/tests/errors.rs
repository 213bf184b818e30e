//! Connection failures: a clear "unavailable" error that never shows the URL's password.

use floe_promotion::Error;
use floe_promotion_postgres::testing::TestPostgres;
use floe_promotion_postgres::{PostgresOptions, PostgresStore};

const SECRET: &str = "hunter2-not-shown";

#[tokio::test]
async fn an_unreachable_server_is_unavailable_and_the_password_is_redacted() {
    // A port nothing listens on: bind one, then let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let url = format!("postgres://floe:{SECRET}@127.0.0.1:{port}/floe?sslmode=disable");
    let err = PostgresStore::connect_with(
        &url,
        PostgresOptions::default().connect_timeout(std::time::Duration::from_secs(2)),
    )
    .await
    .expect_err("nothing listens there");
    let shown = format!("{err} {err:?}");
    assert!(matches!(err, Error::Unavailable { .. }), "{shown}");
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(shown.contains("floe:***@127.0.0.1"), "{shown}");
}

#[tokio::test]
async fn a_malformed_url_is_refused_without_showing_it() {
    let err = PostgresStore::connect(&format!("postgres://floe:{SECRET}@127.0.0.1:notaport/x"))
        .await
        .expect_err("not a URL");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(SECRET), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_and_redacted_url_hide_the_password() {
    let server = TestPostgres::shared();
    let url = server.fresh_database().await;
    // Trust authentication accepts any password; the URL still carries one.
    let with_password = url.replacen("postgres@", &format!("postgres:{SECRET}@"), 1);
    let store = PostgresStore::connect(&with_password)
        .await
        .expect("connect");
    assert!(!format!("{store:?}").contains(SECRET));
    assert!(
        store.redacted_url().contains("postgres:***@"),
        "{}",
        store.redacted_url()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_of_a_newer_schema_is_refused() {
    let url = TestPostgres::shared().fresh_database().await;
    PostgresStore::connect(&url)
        .await
        .expect("first connect migrates");
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("admin connection");
    let task = tokio::spawn(conn);
    client
        .execute("UPDATE schema_version SET version = 999", &[])
        .await
        .expect("bump the version");
    drop(client);
    let _ = task.await;
    let err = PostgresStore::connect(&url)
        .await
        .expect_err("newer schema");
    assert!(matches!(err, Error::Store { .. }), "{err}");
    assert!(err.to_string().contains("999"), "{err}");
}

/// An `sslmode` the driver does not know is refused before any connection is tried, never
/// taken as plain text.
#[tokio::test]
async fn an_unknown_sslmode_is_refused() {
    let err = PostgresStore::connect("postgres://floe:pw@127.0.0.1:1/floe?sslmode=sometimes")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    assert!(!err.to_string().contains(":pw@"), "{err}");
}
