//! Users of SASL: SCRAM credentials (RFC 5802, RFC 7677) kept in the metadata store under
//! `users/{name}`, never a password. PLAIN logins are checked against the same credentials by
//! deriving the keys from the offered password.

use serde::{Deserialize, Serialize};
use strata_meta::schema;
use strata_meta::{Compare, CompareOp, Txn, TxnOp};

use crate::admin::Admin;
use crate::error::{CatalogError, Result};
pub use strata_sasl::{
    DEFAULT_ITERATIONS, MAX_ITERATIONS, MIN_ITERATIONS, ScramCredential, ScramExchange,
    ScramMechanism, ScramStep,
};

/// A user as stored: its credentials, one per mechanism.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    pub name: String,
    pub credentials: Vec<ScramCredential>,
}

impl UserRecord {
    pub fn credential(&self, mechanism: ScramMechanism) -> Option<&ScramCredential> {
        self.credentials.iter().find(|c| c.mechanism == mechanism)
    }
}

/// A user name: what SASL clients send, kept to characters that are safe in a key and need
/// no SCRAM escaping (`,` and `=`).
pub fn validate_user_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 249
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(CatalogError::InvalidArgument(format!(
            "user name `{name}` is not valid: use 1 to 249 letters, digits, `.`, `_`, `-` and `@`"
        )))
    }
}

const ATTEMPTS: usize = 8;

impl Admin {
    /// Every user, by name.
    pub async fn users(&self) -> Result<Vec<UserRecord>> {
        let (kvs, _) = self.meta().range(&self.keys().users()).await?;
        kvs.iter()
            .map(|kv| Ok(schema::decode(&kv.key, &kv.value)?))
            .collect()
    }

    /// One user, if it exists.
    pub async fn user(&self, name: &str) -> Result<Option<UserRecord>> {
        validate_user_name(name)?;
        let key = self.keys().user(name);
        match self.meta().get(&key).await? {
            Some(kv) => Ok(Some(schema::decode(&key, &kv.value)?)),
            None => Ok(None),
        }
    }

    /// Adds or replaces `name`'s credential for its mechanism, creating the user if needed.
    pub async fn upsert_credential(&self, name: &str, credential: ScramCredential) -> Result<()> {
        validate_user_name(name)?;
        credential.check()?;
        let key = self.keys().user(name);
        for _ in 0..ATTEMPTS {
            let current = self.meta().get(&key).await?;
            let (guard, mut user) = match &current {
                Some(kv) => (
                    Compare::mod_revision(key.clone(), CompareOp::Equal, kv.mod_revision),
                    schema::decode::<UserRecord>(&key, &kv.value)?,
                ),
                None => (
                    Compare::absent(key.clone()),
                    UserRecord {
                        name: name.to_owned(),
                        credentials: Vec::new(),
                    },
                ),
            };
            user.credentials
                .retain(|c| c.mechanism != credential.mechanism);
            user.credentials.push(credential.clone());
            user.credentials.sort_by_key(|c| c.mechanism);
            let txn = Txn::new()
                .when([guard])
                .and_then([TxnOp::put(key.clone(), schema::encode(&user))]);
            if self.meta().txn(txn).await?.succeeded {
                tracing::info!(user = %name, mechanism = credential.mechanism.name(), "user credential set");
                return Ok(());
            }
        }
        Err(CatalogError::Conflict(format!(
            "user `{name}` kept changing while its credential was being set"
        )))
    }

    /// Removes `name`'s credential for `mechanism` (the user with its last one); `false`
    /// when there was none.
    pub async fn delete_credential(&self, name: &str, mechanism: ScramMechanism) -> Result<bool> {
        validate_user_name(name)?;
        let key = self.keys().user(name);
        for _ in 0..ATTEMPTS {
            let Some(kv) = self.meta().get(&key).await? else {
                return Ok(false);
            };
            let mut user: UserRecord = schema::decode(&key, &kv.value)?;
            if user.credential(mechanism).is_none() {
                return Ok(false);
            }
            user.credentials.retain(|c| c.mechanism != mechanism);
            let guard = Compare::mod_revision(key.clone(), CompareOp::Equal, kv.mod_revision);
            let write = if user.credentials.is_empty() {
                TxnOp::delete(key.clone())
            } else {
                TxnOp::put(key.clone(), schema::encode(&user))
            };
            if self
                .meta()
                .txn(Txn::new().when([guard]).and_then([write]))
                .await?
                .succeeded
            {
                tracing::info!(user = %name, mechanism = mechanism.name(), "user credential removed");
                return Ok(true);
            }
        }
        Err(CatalogError::Conflict(format!(
            "user `{name}` kept changing while its credential was being removed"
        )))
    }

    /// Removes a user and all its credentials; `false` when it did not exist.
    pub async fn delete_user(&self, name: &str) -> Result<bool> {
        validate_user_name(name)?;
        let removed = self.meta().delete(&self.keys().user(name)).await?;
        if removed {
            tracing::info!(user = %name, "user removed");
        }
        Ok(removed)
    }
}
