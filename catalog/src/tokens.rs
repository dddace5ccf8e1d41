//! Bearer tokens for the gRPC and REST APIs, kept in the metadata store under `tokens/{id}`.
//!
//! A token reads `strata_<id>_<secret>`: the id finds the record, the secret proves the bearer
//! holds what was issued. The record keeps a SHA-256 of the secret, never the secret, which is
//! shown once, when the token is made. A secret of 256 random bits needs no salt or slow hash:
//! nobody can guess it, so a fast hash loses nothing and keeps each request cheap.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use strata_meta::schema;
use strata_meta::{Compare, Txn, TxnOp};

use crate::admin::Admin;
use crate::error::{CatalogError, Result};

const PREFIX: &str = "strata_";
const ID_BYTES: usize = 8;
const SECRET_BYTES: usize = 32;

/// What a token stands for.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Public: listed, and named when the token is revoked.
    pub id: String,
    /// Who the bearer is, `User:<name>`.
    pub principal: String,
    /// What it is for, as its maker said.
    #[serde(default)]
    pub description: String,
    pub created_ms: i64,
    /// After this the token is refused; `None`: until revoked.
    pub expires_ms: Option<i64>,
    /// Hex.
    secret_sha256: String,
}

/// Leaves out the secret's hash.
impl std::fmt::Debug for TokenRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRecord")
            .field("id", &self.id)
            .field("principal", &self.principal)
            .field("expires_ms", &self.expires_ms)
            .finish_non_exhaustive()
    }
}

impl TokenRecord {
    /// Whether `secret` is this token's, and the token has not expired at `now_ms`.
    pub fn admits(&self, secret: &str, now_ms: i64) -> bool {
        use subtle::ConstantTimeEq as _;
        let digest = hex(&Sha256::digest(secret.as_bytes()));
        let same: bool = digest
            .as_bytes()
            .ct_eq(self.secret_sha256.as_bytes())
            .into();
        same && self.expires_ms.is_none_or(|at| now_ms < at)
    }
}

/// A token just made: the only time its secret exists outside its bearer's hands.
#[derive(Clone)]
pub struct IssuedToken {
    pub record: TokenRecord,
    pub token: String,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

/// The id and secret of a token as a bearer presents it; `None` when it is not one.
pub fn split(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let id_ok = id.len() == ID_BYTES * 2 && id.bytes().all(|b| b.is_ascii_hexdigit());
    (id_ok && !secret.is_empty()).then_some((id, secret))
}

/// A principal as the APIs name one: `User:<name>`, with no spaces or control characters.
pub fn validate_principal(principal: &str) -> Result<()> {
    let ok = principal.strip_prefix("User:").is_some_and(|name| {
        !name.is_empty()
            && name.len() <= 255
            && name.chars().all(|c| !c.is_whitespace() && !c.is_control())
    });
    if ok {
        Ok(())
    } else {
        Err(CatalogError::InvalidArgument(format!(
            "principal `{principal}` is not valid: write `User:<name>` (the name without spaces)"
        )))
    }
}

impl Admin {
    /// Makes a token for `principal`; the secret is in the answer and nowhere else.
    pub async fn create_token(
        &self,
        principal: &str,
        description: &str,
        created_ms: i64,
        expires_ms: Option<i64>,
    ) -> Result<IssuedToken> {
        use base64::Engine as _;
        validate_principal(principal)?;
        if description.len() > 1024 {
            return Err(CatalogError::InvalidArgument(
                "a token's description takes at most 1,024 bytes".into(),
            ));
        }
        if expires_ms.is_some_and(|at| at <= created_ms) {
            return Err(CatalogError::InvalidArgument(
                "a token must expire in the future".into(),
            ));
        }
        let id = hex(&strata_clock::secret_bytes::<ID_BYTES>());
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(strata_clock::secret_bytes::<SECRET_BYTES>());
        let record = TokenRecord {
            id: id.clone(),
            principal: principal.to_owned(),
            description: description.to_owned(),
            created_ms,
            expires_ms,
            secret_sha256: hex(&Sha256::digest(secret.as_bytes())),
        };
        let key = self.keys().token(&id);
        let txn = Txn::new()
            .when([Compare::absent(key.clone())])
            .and_then([TxnOp::put(key, schema::encode(&record))]);
        if !self.meta().txn(txn).await?.succeeded {
            // 64 random bits collided: not worth a retry loop, but never an overwrite.
            return Err(CatalogError::Conflict(format!("token id {id} is taken")));
        }
        tracing::info!(token = %id, %principal, "token created");
        Ok(IssuedToken {
            token: format!("{PREFIX}{id}_{secret}"),
            record,
        })
    }

    /// Every token's record, by id.
    pub async fn tokens(&self) -> Result<Vec<TokenRecord>> {
        let (kvs, _) = self.meta().range(&self.keys().tokens()).await?;
        kvs.iter()
            .map(|kv| Ok(schema::decode(&kv.key, &kv.value)?))
            .collect()
    }

    /// One token's record, if it exists.
    pub async fn token(&self, id: &str) -> Result<Option<TokenRecord>> {
        let key = self.keys().token(&checked_id(id)?);
        match self.meta().get(&key).await? {
            Some(kv) => Ok(Some(schema::decode(&key, &kv.value)?)),
            None => Ok(None),
        }
    }

    /// Revokes a token; `false` when there was none with this id.
    pub async fn delete_token(&self, id: &str) -> Result<bool> {
        let removed = self
            .meta()
            .delete(&self.keys().token(&checked_id(id)?))
            .await?;
        if removed {
            tracing::info!(token = %id, "token revoked");
        }
        Ok(removed)
    }
}

fn checked_id(id: &str) -> Result<String> {
    if id.len() == ID_BYTES * 2 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(id.to_ascii_lowercase())
    } else {
        Err(CatalogError::InvalidArgument(format!(
            "token id `{id}` is not valid: it is the 16 hex digits after `strata_` (`strata token list` shows them)"
        )))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
