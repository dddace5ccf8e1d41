//! Bearer tokens and the authenticator on both metadata backends: a token is shown once and
//! stored as a hash; it authenticates until revoked (within the cache's lifetime) or expired;
//! anything else is refused with UNAUTHENTICATED.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use strata_catalog::auth::{Authenticator, TOKEN_CACHE_TTL};
use strata_catalog::{Admin, CatalogError};
use strata_clock::{Clock as _, ManualClock};
use strata_meta::MetaStore;
use strata_meta::schema::Keyspace;
use strata_proto::{Coded as _, ErrorCode};

const PEER: Option<std::net::SocketAddr> = Some(std::net::SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
    40000,
));

fn refused(result: Result<Option<String>, CatalogError>) -> String {
    match result {
        Err(e) => {
            assert_eq!(e.code(), ErrorCode::Unauthenticated, "{e}");
            e.to_string()
        }
        Ok(p) => panic!("expected a refusal, got principal {p:?}"),
    }
}

async fn scenario(meta: Arc<dyn MetaStore>) {
    let keys = Keyspace::new("tokens-test").unwrap();
    let admin = Admin::new(meta.clone(), keys.clone());
    let clock = Arc::new(ManualClock::new());
    let now = clock.unix_millis();
    let auth = Authenticator::new(admin.clone(), true, clock.clone());

    let alice = admin
        .create_token("User:alice", "ci", now, None)
        .await
        .unwrap();
    let brief = admin
        .create_token("User:bob", "", now, Some(now + 60_000))
        .await
        .unwrap();
    assert!(
        alice
            .token
            .starts_with(&format!("strata_{}_", alice.record.id))
    );
    // The store holds a hash: the secret is in no stored byte.
    // Split as the server does: the secret's own alphabet has `_` in it.
    let (_, secret) = strata_catalog::tokens::split(&alice.token).unwrap();
    let (stored, _) = meta.range(&keys.tokens()).await.unwrap();
    assert_eq!(stored.len(), 2);
    for kv in &stored {
        assert!(!String::from_utf8_lossy(&kv.value).contains(secret));
    }
    assert!(
        !format!("{alice:?}").contains(secret),
        "Debug leaves the secret out"
    );

    let bearer = |t: &str| format!("Bearer {t}");
    assert_eq!(
        auth.authenticate(PEER, None, Some(&bearer(&alice.token)))
            .await
            .unwrap()
            .as_deref(),
        Some("User:alice")
    );
    // A certificate's principal stands when no header comes; a header wins over it.
    assert_eq!(
        auth.authenticate(PEER, Some("User:cert"), None)
            .await
            .unwrap()
            .as_deref(),
        Some("User:cert")
    );
    assert_eq!(
        auth.authenticate(PEER, Some("User:cert"), Some(&bearer(&brief.token)))
            .await
            .unwrap()
            .as_deref(),
        Some("User:bob")
    );

    // Nothing, a wrong secret, a made-up id, a malformed header: all refused.
    assert!(refused(auth.authenticate(PEER, None, None).await).contains("--token"));
    let wrong_secret = format!("strata_{}_AAAA", alice.record.id);
    refused(
        auth.authenticate(PEER, None, Some(&bearer(&wrong_secret)))
            .await,
    );
    refused(
        auth.authenticate(PEER, None, Some(&bearer("strata_0123456789abcdef_AAAA")))
            .await,
    );
    refused(auth.authenticate(PEER, None, Some(&alice.token)).await);

    // Expiry is checked on every request, cached or not.
    clock.advance(Duration::from_secs(61));
    refused(
        auth.authenticate(PEER, None, Some(&bearer(&brief.token)))
            .await,
    );

    // Revocation: the cached record holds until the cache's lifetime ends.
    auth.authenticate(PEER, None, Some(&bearer(&alice.token)))
        .await
        .unwrap();
    assert!(admin.delete_token(&alice.record.id).await.unwrap());
    assert!(!admin.delete_token(&alice.record.id).await.unwrap());
    assert!(
        auth.authenticate(PEER, None, Some(&bearer(&alice.token)))
            .await
            .is_ok()
    );
    clock.advance(TOKEN_CACHE_TTL);
    refused(
        auth.authenticate(PEER, None, Some(&bearer(&alice.token)))
            .await,
    );
    assert_eq!(admin.tokens().await.unwrap().len(), 1);

    // Off, a caller without credentials runs as nobody.
    let open = Authenticator::new(admin.clone(), false, clock.clone());
    assert_eq!(open.authenticate(PEER, None, None).await.unwrap(), None);

    // Bad input is refused by name.
    for principal in ["alice", "User:", "User:a b"] {
        let e = admin
            .create_token(principal, "", now, None)
            .await
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidArgument, "{principal}: {e}");
    }
    let past = admin
        .create_token("User:a", "", now, Some(now - 1))
        .await
        .unwrap_err();
    assert_eq!(past.code(), ErrorCode::InvalidArgument);
    assert_eq!(
        admin.delete_token("nothex").await.unwrap_err().code(),
        ErrorCode::InvalidArgument
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_on_embedded_store() {
    let (_dir, meta) = strata_meta::testing::embedded().await;
    scenario(meta).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_on_etcd() {
    let (_etcd, meta) = strata_meta::testing::etcd().await;
    scenario(meta).await;
}
