//! People who sign in to the operator console: email and an argon2id password hash (RustCrypto
//! `argon2`, default parameters), a role (`admin` may add users and API keys), and a lock-out
//! after repeated wrong passwords so a password cannot be guessed online.

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect, Set,
};

use super::audit::{self, Actor};
use crate::domain::validation::FieldErrors;
use crate::ids;
use crate::store::entities::{console_session, operator, operator_user};
use crate::store::{Db, write_txn};

/// Wrong passwords in a row before the account locks.
pub const MAX_FAILURES: i32 = 5;
pub const MIN_PASSWORD_CHARS: usize = 12;

pub fn lock_out() -> Duration {
    Duration::minutes(15)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "admin" => Ok(Role::Admin),
            "member" => Ok(Role::Member),
            other => Err(format!("'{other}' is not one of: admin, member")),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("{0}")]
    Invalid(FieldErrors),
    #[error("no such operator")]
    NoOperator,
    #[error(transparent)]
    Db(#[from] DbErr),
}

impl From<FieldErrors> for UserError {
    fn from(e: FieldErrors) -> Self {
        UserError::Invalid(e)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    #[error("no such user")]
    NotFound,
    #[error(
        "{0} is the only admin: make another user an admin first, or no one could add users or API keys"
    )]
    LastAdmin(String),
    #[error(transparent)]
    Db(#[from] DbErr),
}

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// Unknown email or wrong password: the two are not told apart (nor how many tries are
    /// left, which would say the email has an account).
    #[error("the email or password is not right")]
    Wrong,
    #[error("too many wrong passwords: the account is locked until {until}")]
    Locked { until: DateTime<Utc> },
    #[error(transparent)]
    Db(#[from] DbErr),
}

pub fn normalise_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// What the sign-in throttle counts an email's wrong passwords under (apart from travellers'
/// booking references).
pub fn throttle_key(email: &str) -> String {
    format!("console:{}", normalise_email(email))
}

fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashes any password with default parameters")
        .to_string()
}

/// Runs argon2 (tens of milliseconds, ~19 MiB) on tokio's blocking threads: on the server's
/// workers a burst of sign-ins would stall every other request. As many at once as there are
/// cores, the rest waiting their turn: the blocking pool alone would take hundreds, and their
/// memory with them.
async fn hashing<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    static TURNS: std::sync::OnceLock<std::sync::Arc<tokio::sync::Semaphore>> =
        std::sync::OnceLock::new();
    let turns = TURNS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        std::sync::Arc::new(tokio::sync::Semaphore::new(cores))
    });
    let turn = turns
        .clone()
        .acquire_owned()
        .await
        .expect("the semaphore is never closed");
    // The turn goes with the work: a client that hangs up drops its request, not the hashing
    // already under way, which keeps its turn until it ends.
    tokio::task::spawn_blocking(move || {
        let _turn = turn;
        work()
    })
    .await
    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

async fn password_matches(hash: String, password: &str) -> bool {
    let password = password.to_owned();
    hashing(move || verify_password(&hash, &password)).await
}

fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Creates a console user of `operator_id`. `by` is who did it (an admin, or the command line).
pub async fn create(
    db: &Db,
    by: &Actor,
    email: &str,
    password: &str,
    role: Role,
) -> Result<operator_user::Model, UserError> {
    let email = normalise_email(email);
    let mut errors = FieldErrors::new();
    let plausible = email
        .rsplit_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
        && email.len() <= 254
        && !email.chars().any(char::is_whitespace);
    if !plausible {
        errors.add("email", "is not an email address");
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        errors.add(
            "password",
            format!("must have at least {MIN_PASSWORD_CHARS} characters"),
        );
    }
    errors.into_result()?;
    // Hash before the transaction: argon2 takes a while and holds no lock.
    let password_hash = {
        let password = password.to_owned();
        hashing(move || hash_password(&password)).await
    };
    let txn = write_txn(db).await?;
    if operator::Entity::find_by_id(by.operator_id.clone())
        .one(&txn)
        .await?
        .is_none()
    {
        return Err(UserError::NoOperator);
    }
    if operator_user::Entity::find()
        .filter(operator_user::Column::Email.eq(&email))
        .one(&txn)
        .await?
        .is_some()
    {
        return Err(FieldErrors::single("email", "already has a console account").into());
    }
    let user = operator_user::ActiveModel {
        id: Set(ids::new_id("usr")),
        operator_id: Set(by.operator_id.clone()),
        email: Set(email.clone()),
        password_hash: Set(password_hash),
        role: Set(role.as_str().to_owned()),
        failed_attempts: Set(0),
        locked_until: Set(None),
        created_at: Set(Utc::now()),
        last_sign_in_at: Set(None),
    }
    .insert(&txn)
    .await?;
    audit::record(
        &txn,
        by,
        "user.created",
        &email,
        None,
        Some(format!("role={}", role.as_str())),
    )
    .await?;
    txn.commit().await?;
    Ok(user)
}

/// The demo operator's admin: created, or given a fresh password, on every demo load (like
/// the demo API keys), so the banner can print a password that works. Returns the password.
pub async fn reset_demo_admin(
    conn: &impl ConnectionTrait,
    operator_id: &str,
    email: &str,
) -> Result<String, DbErr> {
    let password = ids::random_token("demo", 16);
    let hash = hash_password(&password);
    let now = Utc::now();
    let by = Actor::system(operator_id, "demo");
    match operator_user::Entity::find()
        .filter(operator_user::Column::Email.eq(email))
        .one(conn)
        .await?
    {
        Some(user) => {
            let mut am = user.into_active_model();
            am.password_hash = Set(hash);
            am.failed_attempts = Set(0);
            am.locked_until = Set(None);
            am.update(conn).await?;
            audit::record(conn, &by, "user.password_reset", email, None, None).await?;
        }
        None => {
            operator_user::ActiveModel {
                id: Set(ids::new_id("usr")),
                operator_id: Set(operator_id.to_owned()),
                email: Set(email.to_owned()),
                password_hash: Set(hash),
                role: Set(Role::Admin.as_str().to_owned()),
                failed_attempts: Set(0),
                locked_until: Set(None),
                created_at: Set(now),
                last_sign_in_at: Set(None),
            }
            .insert(conn)
            .await?;
            audit::record(
                conn,
                &by,
                "user.created",
                email,
                None,
                Some("role=admin".into()),
            )
            .await?;
        }
    }
    Ok(password)
}

pub async fn list(db: &Db, operator_id: &str) -> Result<Vec<operator_user::Model>, DbErr> {
    operator_user::Entity::find()
        .filter(operator_user::Column::OperatorId.eq(operator_id))
        .order_by_asc(operator_user::Column::Email)
        .all(db)
        .await
}

/// Removes a console user of `by`'s operator (someone who left, or a password to reset:
/// remove, then add again). Their sessions end at once. The last admin stays.
pub async fn remove(
    db: &Db,
    by: &Actor,
    user_id: &str,
) -> Result<operator_user::Model, RemoveError> {
    let txn = write_txn(db).await?;
    // Every user of the operator, locked in one order: two admins removing each other at
    // once cannot both pass the last-admin check, nor deadlock.
    let users = operator_user::Entity::find()
        .filter(operator_user::Column::OperatorId.eq(&by.operator_id))
        .order_by_asc(operator_user::Column::Id)
        .lock_exclusive()
        .all(&txn)
        .await?;
    let user = users
        .iter()
        .find(|u| u.id == user_id)
        .cloned()
        .ok_or(RemoveError::NotFound)?;
    let admin = Role::Admin.as_str();
    if user.role == admin && users.iter().filter(|u| u.role == admin).count() == 1 {
        return Err(RemoveError::LastAdmin(user.email));
    }
    console_session::Entity::delete_many()
        .filter(console_session::Column::UserId.eq(&user.id))
        .exec(&txn)
        .await?;
    operator_user::Entity::delete_by_id(user.id.clone())
        .exec(&txn)
        .await?;
    audit::record(
        &txn,
        by,
        "user.removed",
        &user.email,
        Some(format!("role={}", user.role)),
        None,
    )
    .await?;
    txn.commit().await?;
    Ok(user)
}

/// Checks a password. After [`MAX_FAILURES`] wrong ones in a row the account is locked for
/// [`lock_out`], during which even the right password is refused.
pub async fn sign_in(
    db: &Db,
    email: &str,
    password: &str,
    now: DateTime<Utc>,
) -> Result<operator_user::Model, SignInError> {
    let email = normalise_email(email);
    let Some(user) = operator_user::Entity::find()
        .filter(operator_user::Column::Email.eq(&email))
        .one(db)
        .await?
    else {
        // Spend the same time as a real check, so timing does not tell which emails exist.
        let password = password.to_owned();
        hashing(move || verify_password(&dummy_hash(), &password)).await;
        return Err(SignInError::Wrong);
    };
    if let Some(until) = user.locked_until
        && until > now
    {
        return Err(SignInError::Locked { until });
    }
    let right = password_matches(user.password_hash.clone(), password).await;
    // Counted in one transaction so parallel guesses cannot slip past the limit; and a lock
    // set meanwhile by guesses sent alongside refuses even the right password, as it would
    // have had this one come a moment later.
    let txn = write_txn(db).await?;
    let current = operator_user::Entity::find_by_id(user.id.clone())
        .lock_exclusive()
        .one(&txn)
        .await?
        .ok_or(SignInError::Wrong)?;
    if let Some(until) = current.locked_until
        && until > now
    {
        return Err(SignInError::Locked { until });
    }
    let failures = if current.locked_until.is_some_and(|u| u <= now) {
        0 // a lock that ran out starts a fresh count
    } else {
        current.failed_attempts
    };
    let mut am = current.into_active_model();
    let outcome = if right {
        am.failed_attempts = Set(0);
        am.locked_until = Set(None);
        am.last_sign_in_at = Set(Some(now));
        Ok(())
    } else if failures + 1 >= MAX_FAILURES {
        let until = now + lock_out();
        am.failed_attempts = Set(failures + 1);
        am.locked_until = Set(Some(until));
        Err(SignInError::Locked { until })
    } else {
        am.failed_attempts = Set(failures + 1);
        am.locked_until = Set(None);
        Err(SignInError::Wrong)
    };
    let updated = am.update(&txn).await?;
    txn.commit().await?;
    outcome.map(|()| updated)
}

fn dummy_hash() -> String {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password("not a password anyone has"))
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_matches_its_hash_and_nothing_else() {
        let hash = hash_password("correct horse battery");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(&hash, "correct horse battery"));
        assert!(!verify_password(&hash, "correct horse battery "));
        assert!(!verify_password("not a hash", "anything"));
    }
}
