//! Users of SASL: SCRAM credentials (RFC 5802, RFC 7677) kept in the metadata store under
//! `users/{name}`, never a password. PLAIN logins are checked against the same credentials by
//! deriving the keys from the offered password.

mod scram;

use serde::{Deserialize, Serialize};
use strata_meta::schema;
use strata_meta::{Compare, CompareOp, Txn, TxnOp};

pub use self::scram::{ScramExchange, ScramStep};
use crate::admin::Admin;
use crate::error::{CatalogError, Result};

/// The hash a SCRAM credential is made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ScramMechanism {
    #[serde(rename = "SCRAM-SHA-256")]
    Sha256,
    #[serde(rename = "SCRAM-SHA-512")]
    Sha512,
}

/// Fewer iterations are refused (RFC 7677's floor; Kafka's too).
pub const MIN_ITERATIONS: u32 = 4096;
/// More would let one login cost seconds of a proxy's CPU.
pub const MAX_ITERATIONS: u32 = 16384;

impl ScramMechanism {
    pub const ALL: [Self; 2] = [Self::Sha256, Self::Sha512];

    /// The SASL mechanism name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "SCRAM-SHA-256",
            Self::Sha512 => "SCRAM-SHA-512",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
    }

    /// Kafka's numbering in Describe/AlterUserScramCredentials.
    pub fn kafka_type(self) -> i8 {
        match self {
            Self::Sha256 => 1,
            Self::Sha512 => 2,
        }
    }

    pub fn from_kafka_type(t: i8) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.kafka_type() == t)
    }
}

/// What a login with one mechanism is checked against: the salt and iteration count a
/// client needs to salt its password, and the two keys the server keeps.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramCredential {
    pub mechanism: ScramMechanism,
    #[serde(with = "crate::b64")]
    pub salt: Vec<u8>,
    pub iterations: u32,
    #[serde(with = "crate::b64")]
    pub stored_key: Vec<u8>,
    #[serde(with = "crate::b64")]
    pub server_key: Vec<u8>,
}

/// Names the mechanism and iterations only: keys are secrets.
impl std::fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramCredential")
            .field("mechanism", &self.mechanism)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ScramCredential {
    /// A credential for `password` with a new random salt.
    pub fn from_password(mechanism: ScramMechanism, password: &str, iterations: u32) -> Self {
        let salt: [u8; 24] = strata_clock::secret_bytes();
        let salted = scram::salted_password(mechanism, password.as_bytes(), &salt, iterations);
        Self::from_salted_password(mechanism, salt.to_vec(), iterations, &salted)
    }

    /// The credential for a password already salted by the client (Kafka's
    /// AlterUserScramCredentials sends it so).
    pub fn from_salted_password(
        mechanism: ScramMechanism,
        salt: Vec<u8>,
        iterations: u32,
        salted_password: &[u8],
    ) -> Self {
        let (stored_key, server_key) = scram::keys(mechanism, salted_password);
        Self {
            mechanism,
            salt,
            iterations,
            stored_key,
            server_key,
        }
    }

    /// Whether `password` is this credential's (for SASL PLAIN), in constant time.
    pub fn matches_password(&self, password: &str) -> bool {
        use subtle::ConstantTimeEq as _;
        let salted = scram::salted_password(
            self.mechanism,
            password.as_bytes(),
            &self.salt,
            self.iterations,
        );
        let (stored, _) = scram::keys(self.mechanism, &salted);
        stored.ct_eq(&self.stored_key).into()
    }

    fn check(&self) -> Result<()> {
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&self.iterations) {
            return Err(CatalogError::InvalidArgument(format!(
                "{} iterations must be between {MIN_ITERATIONS} and {MAX_ITERATIONS}, got {}",
                self.mechanism.name(),
                self.iterations
            )));
        }
        if self.salt.len() < 16 {
            return Err(CatalogError::InvalidArgument(
                "a SCRAM salt must be at least 16 bytes".into(),
            ));
        }
        Ok(())
    }
}

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
