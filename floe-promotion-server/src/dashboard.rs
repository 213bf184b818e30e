//! The web dashboard at `/`: server-rendered HTML (minijinja), no JavaScript.
//!
//! People sign in with a token (the same tokens the API takes); the server keeps a session
//! and sets a cookie that is `HttpOnly` and `SameSite=Strict` (and `Secure` over HTTPS). Every
//! form of a signed-in page carries the session's CSRF token, checked on POST; the sign-in
//! form carries one too, checked against a `SameSite=Strict` cookie (double submit). No token,
//! cookie or CSRF value of anyone else appears in a page.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use floe_promotion::history::{HistoryQuery, Order};
use floe_promotion::release::approval::Phase;
use floe_promotion::{Actor, Error};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::state::AppState;

/// The session cookie.
const COOKIE: &str = "floe_session";

/// The sign-in form's CSRF cookie (double submit: the form carries the same value).
const LOGIN_COOKIE: &str = "floe_login";

/// How long a session lasts.
const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);

/// Events shown in the timeline.
const TIMELINE: usize = 50;

/// The sessions of signed-in people, in memory (a restart signs everyone out).
#[derive(Debug, Default)]
pub(crate) struct Sessions(Mutex<HashMap<String, Session>>);

#[derive(Debug, Clone)]
struct Session {
    actor: Actor,
    csrf: String,
    flash: Option<String>,
    expires: Instant,
}

/// 244 random bits (two version-4 UUIDs from a generator seeded by the operating system), as
/// hex.
fn random_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

impl Sessions {
    fn create(&self, actor: Actor) -> (String, Session) {
        let id = random_token();
        let session = Session {
            actor,
            csrf: random_token(),
            flash: None,
            expires: Instant::now() + SESSION_TTL,
        };
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        map.retain(|_, s| s.expires > now);
        map.insert(id.clone(), session.clone());
        (id, session)
    }

    fn get(&self, id: &str) -> Option<Session> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(id).filter(|s| s.expires > Instant::now()).cloned()
    }

    fn take_flash(&self, id: &str) -> Option<String> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get_mut(id).and_then(|s| s.flash.take())
    }

    fn flash(&self, id: &str, message: String) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = map.get_mut(id) {
            s.flash = Some(message);
        }
    }

    fn remove(&self, id: &str) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }
}

fn templates() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    // The name ends in .html: every value is HTML-escaped.
    let _ = env.add_template(
        "dashboard.html",
        include_str!("../templates/dashboard.html"),
    );
    env
}

fn session_of(st: &AppState, jar: &CookieJar) -> Option<(String, Session)> {
    let id = jar.get(COOKIE)?.value().to_string();
    st.sessions.get(&id).map(|s| (id, s))
}

fn page(status: StatusCode, html: String) -> Response {
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

async fn render(
    st: &AppState,
    session: Option<&Session>,
    flash: Option<String>,
    login_csrf: Option<&str>,
) -> Result<String, Error> {
    let environments = st.manager.status(None).await?;
    let approvals = st.manager.approvals(None, Some(Phase::Pending)).await?;
    let history = st
        .manager
        .history(&HistoryQuery {
            limit: Some(TIMELINE),
            order: Order::NewestFirst,
            ..Default::default()
        })
        .await?;
    let ctx = minijinja::context! {
        actor => session.map(|s| minijinja::Value::from_serialize(&s.actor)),
        csrf => session.map(|s| s.csrf.clone()),
        login_csrf => login_csrf,
        flash => flash,
        environments => minijinja::Value::from_serialize(&environments),
        approvals => minijinja::Value::from_serialize(&approvals),
        history => minijinja::Value::from_serialize(&history),
    };
    templates()
        .get_template("dashboard.html")
        .and_then(|t| t.render(ctx))
        .map_err(|e| Error::Store {
            backend: "dashboard",
            location: "dashboard.html".into(),
            message: e.to_string(),
        })
}

/// `GET /`.
pub(crate) async fn index(State(st): State<AppState>, jar: CookieJar) -> Response {
    let session = session_of(&st, &jar);
    let flash = session
        .as_ref()
        .and_then(|(id, _)| st.sessions.take_flash(id));
    let (jar, login_csrf) = match &session {
        Some(_) => (jar, None),
        None => {
            let (jar, token) = login_token(&st, jar);
            (jar, Some(token))
        }
    };
    match render(
        &st,
        session.as_ref().map(|(_, s)| s),
        flash,
        login_csrf.as_deref(),
    )
    .await
    {
        Ok(html) => (jar, page(StatusCode::OK, html)).into_response(),
        Err(e) => page(
            crate::error::http_status(&st.errors.report(&e).kind),
            format!(
                "<!doctype html><title>floe</title><p>{}</p>",
                html_escape(&e.to_string())
            ),
        ),
    }
}

fn html_escape(s: &str) -> String {
    minijinja::HtmlEscape(s).to_string()
}

/// The sign-in form's CSRF token: the one the browser's cookie holds, or a new one set in it.
fn login_token(st: &AppState, jar: CookieJar) -> (CookieJar, String) {
    if let Some(token) = jar.get(LOGIN_COOKIE).map(|c| c.value().to_string())
        && token.len() == 64
    {
        return (jar, token);
    }
    let token = random_token();
    let cookie = Cookie::build((LOGIN_COOKIE, token.clone()))
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(st.tls)
        .path("/login")
        .build();
    (jar.add(cookie), token)
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    token: String,
    csrf: String,
}

/// `POST /login`: a token for a session.
pub(crate) async fn login(
    State(st): State<AppState>,
    jar: CookieJar,
    Form(form): Form<LoginForm>,
) -> Response {
    // Double submit: a cross-site form cannot read or send the SameSite=Strict cookie.
    let expected = jar.get(LOGIN_COOKIE).map(|c| c.value().to_string());
    if !expected.is_some_and(|e| bool::from(e.as_bytes().ct_eq(form.csrf.as_bytes()))) {
        return forbidden();
    }
    match st.identity.verify(&form.token).await {
        Ok(actor) => {
            let (id, _) = st.sessions.create(actor);
            let cookie = Cookie::build((COOKIE, id))
                .http_only(true)
                .same_site(SameSite::Strict)
                .secure(st.tls)
                .path("/")
                .build();
            (jar.add(cookie), Redirect::to("/")).into_response()
        }
        Err(refused) => {
            tracing::info!(reason = %refused, "dashboard sign-in refused");
            let csrf = form.csrf.clone();
            match render(
                &st,
                None,
                Some("Sign-in refused: that token is not valid.".into()),
                Some(&csrf),
            )
            .await
            {
                Ok(html) => page(StatusCode::UNAUTHORIZED, html),
                Err(_) => StatusCode::UNAUTHORIZED.into_response(),
            }
        }
    }
}

/// A form that needs only the CSRF token.
#[derive(Debug, Deserialize)]
pub(crate) struct CsrfForm {
    csrf: String,
}

/// The reject form.
#[derive(Debug, Deserialize)]
pub(crate) struct RejectForm {
    csrf: String,
    reason: String,
}

/// The session of a POST whose CSRF token matches it.
fn checked(st: &AppState, jar: &CookieJar, csrf: &str) -> Option<(String, Session)> {
    let (id, session) = session_of(st, jar)?;
    bool::from(session.csrf.as_bytes().ct_eq(csrf.as_bytes())).then_some((id, session))
}

/// The answer to a form without a valid session or CSRF token.
fn forbidden() -> Response {
    (
        StatusCode::FORBIDDEN,
        "sign in again: the form's session is not valid\n",
    )
        .into_response()
}

/// `POST /logout`.
pub(crate) async fn logout(
    State(st): State<AppState>,
    jar: CookieJar,
    Form(form): Form<CsrfForm>,
) -> Response {
    match checked(&st, &jar, &form.csrf) {
        Some((id, _)) => {
            st.sessions.remove(&id);
            (
                jar.remove(Cookie::build(COOKIE).path("/")),
                Redirect::to("/"),
            )
                .into_response()
        }
        None => forbidden(),
    }
}

fn request_id(id: &str) -> Result<uuid::Uuid, Error> {
    id.parse()
        .map_err(|_| Error::invalid("approval request id", id, "not a request id (a UUID)"))
}

/// `POST /ui/approvals/{id}/approve`.
pub(crate) async fn approve(
    State(st): State<AppState>,
    Path(id): Path<String>,
    jar: CookieJar,
    Form(form): Form<CsrfForm>,
) -> Response {
    let Some((sid, session)) = checked(&st, &jar, &form.csrf) else {
        return forbidden();
    };
    let result = match request_id(&id) {
        Ok(id) => st.manager.approve(id, &session.actor, None).await,
        Err(e) => Err(e),
    };
    let message = match result {
        Ok(outcome) => match (&outcome.executed, &outcome.execution_blocked) {
            (Some(r), _) => format!("Approved: {} {} is now in {}.", r.artifact, r.version, r.to),
            (None, Some(blocked)) => format!("Approved; the promotion is blocked: {blocked}"),
            (None, None) => "Approved; more approvals are needed.".into(),
        },
        Err(e) => format!("Not approved: {}", st.errors.report(&e).error),
    };
    st.sessions.flash(&sid, message);
    Redirect::to("/").into_response()
}

/// `POST /ui/approvals/{id}/reject`.
pub(crate) async fn reject(
    State(st): State<AppState>,
    Path(id): Path<String>,
    jar: CookieJar,
    Form(form): Form<RejectForm>,
) -> Response {
    let Some((sid, session)) = checked(&st, &jar, &form.csrf) else {
        return forbidden();
    };
    let result = match request_id(&id) {
        Ok(id) => st.manager.reject(id, &session.actor, &form.reason).await,
        Err(e) => Err(e),
    };
    let message = match result {
        Ok(r) => format!(
            "Rejected {} {} into {}.",
            r.ticket.artifact, r.ticket.version, r.ticket.to
        ),
        Err(e) => format!("Not rejected: {}", st.errors.report(&e).error),
    };
    st.sessions.flash(&sid, message);
    Redirect::to("/").into_response()
}
