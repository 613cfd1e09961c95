//! Users and API keys of the operator. Everyone signed in sees them; only admins add and
//! remove users, create keys (the secret is shown once, on the page that follows) and revoke
//! keys.

use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

use super::{ConsoleUser, CsrfForm, FormErrors, Nav, PageError, html, html_invalid, see_other};
use crate::domain::validation::FieldErrors;
use crate::services::keys;
use crate::services::operator_users::{self, RemoveError, Role, UserError};
use crate::services::throttle::LoginThrottle;
use crate::store::Db;
use crate::store::api_keys::Scope;
use crate::store::entities::{api_key, operator_user};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(page)
        .service(add_user)
        .service(remove_user)
        .service(create_key)
        .service(revoke_key);
}

#[derive(Template)]
#[template(path = "console/users.html")]
struct UsersPage {
    nav: Nav,
    users: Vec<operator_user::Model>,
    keys: Vec<api_key::Model>,
    user_errors: FormErrors,
    key_errors: FormErrors,
    email: String,
    role: String,
    key_name: String,
    /// A key just created: (name, secret), shown this once.
    new_secret: Option<(String, String)>,
    notice: Option<String>,
    now: chrono::DateTime<chrono::Utc>,
}

impl UsersPage {
    /// Until when a user is locked out, if they are now (a lock that ran out is no lock).
    fn locked(&self, u: &operator_user::Model) -> Option<String> {
        u.locked_until
            .filter(|until| *until > self.now)
            .map(|until| until.format("%Y-%m-%d %H:%M UTC").to_string())
    }
}

async fn users_page(db: &Db, user: &ConsoleUser) -> Result<UsersPage, PageError> {
    Ok(UsersPage {
        nav: user.nav("users"),
        users: operator_users::list(db, user.operator_id()).await?,
        keys: keys::list(db, user.operator_id()).await?,
        user_errors: FormErrors::default(),
        key_errors: FormErrors::default(),
        email: String::new(),
        role: "member".into(),
        key_name: String::new(),
        new_secret: None,
        notice: None,
        now: chrono::Utc::now(),
    })
}

#[derive(Deserialize)]
struct Done {
    #[serde(default)]
    done: String,
}

#[get("/console/users")]
async fn page(
    user: ConsoleUser,
    db: web::Data<Db>,
    done: web::Query<Done>,
) -> Result<HttpResponse, PageError> {
    let mut p = users_page(&db, &user).await?;
    p.notice = match done.done.as_str() {
        "user" => Some("User added. Give them their password by a safe channel.".into()),
        "revoked" => Some("Key revoked: calls with it are refused from now on.".into()),
        "removed" => Some("User removed: they are signed out and cannot sign in again.".into()),
        _ => None,
    };
    html(p)
}

#[derive(Deserialize)]
struct UserForm {
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    role: String,
}

#[post("/console/users")]
async fn add_user(
    user: ConsoleUser,
    db: web::Data<Db>,
    throttle: web::Data<LoginThrottle>,
    form: web::Form<UserForm>,
) -> Result<HttpResponse, PageError> {
    user.check_csrf(&form.csrf)?;
    user.require_admin()?;
    let result = match Role::parse(&form.role) {
        Ok(role) => operator_users::create(&db, &user.actor(), &form.email, &form.password, role)
            .await
            .map(|_| ()),
        Err(e) => Err(UserError::Invalid(FieldErrors::single("role", e))),
    };
    match result {
        Ok(()) => {
            // A user added again (a password reset) starts with a clean count, on this
            // process at least; elsewhere an old count runs out within its window.
            throttle.record_success(&operator_users::throttle_key(&form.email));
            Ok(see_other("/console/users?done=user"))
        }
        Err(UserError::Invalid(errors)) => {
            let mut p = users_page(&db, &user).await?;
            p.user_errors = FormErrors::from_fields(&errors);
            p.email = form.email.clone();
            p.role = form.role.clone();
            html_invalid(p)
        }
        Err(UserError::NoOperator) => Err(PageError::Internal),
        Err(UserError::Db(e)) => Err(e.into()),
    }
}

/// Someone who left, or whose password must be reset (then added again): removed, signed
/// out at once.
#[post("/console/users/{id}/remove")]
async fn remove_user(
    user: ConsoleUser,
    db: web::Data<Db>,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    user.check_csrf(&form.csrf)?;
    user.require_admin()?;
    match operator_users::remove(&db, &user.actor(), &id).await {
        Ok(_) => Ok(see_other("/console/users?done=removed")),
        Err(RemoveError::NotFound) => Err(PageError::NotFound("No such user.".into())),
        Err(e @ RemoveError::LastAdmin(_)) => {
            Err(PageError::Conflict(format!("Not removed: {e}.")))
        }
        Err(RemoveError::Db(e)) => Err(e.into()),
    }
}

#[derive(Deserialize)]
struct KeyForm {
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    scope: String,
}

#[post("/console/keys")]
async fn create_key(
    user: ConsoleUser,
    db: web::Data<Db>,
    form: web::Form<KeyForm>,
) -> Result<HttpResponse, PageError> {
    user.check_csrf(&form.csrf)?;
    user.require_admin()?;
    let mut errors = FieldErrors::new();
    let name = form.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        errors.add(
            "name",
            "must be 1 to 100 characters, such as the partner's name",
        );
    }
    let scope = match form.scope.as_str() {
        "operator" => Some(Scope::Operator),
        "partner" => Some(Scope::Partner),
        _ => {
            errors.add("scope", "must be operator or partner");
            None
        }
    };
    let mut p = users_page(&db, &user).await?;
    let (Some(scope), true) = (scope, errors.is_empty()) else {
        p.key_errors = FormErrors::from_fields(&errors);
        p.key_name = form.name.clone();
        return html_invalid(p);
    };
    let (_, secret) = keys::create(&db, &user.actor(), scope, name).await?;
    // Shown on this response only (never stored in clear, never in a URL).
    let mut p = users_page(&db, &user).await?;
    p.new_secret = Some((name.to_owned(), secret));
    html(p)
}

#[post("/console/keys/{id}/revoke")]
async fn revoke_key(
    user: ConsoleUser,
    db: web::Data<Db>,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    user.check_csrf(&form.csrf)?;
    user.require_admin()?;
    match keys::revoke(&db, &user.actor(), &id).await? {
        Some(_) => Ok(see_other("/console/users?done=revoked")),
        None => Err(PageError::NotFound("No such API key.".into())),
    }
}
