//! One error, one code: an error from a lower crate answers with the same code and
//! retriability whichever role passes it on.

use strata_broker::BrokerError;
use strata_catalog::CatalogError;
use strata_controller::ControllerError;
use strata_log::LogError;
use strata_meta::MetaError;
use strata_meta::schema::BadValue;
use strata_proto::{Coded, ErrorCode};
use strata_proxy::ProxyError;

/// The code the proxy, the broker and the controller give an error of the metadata store.
fn codes_in_every_role(make: impl Fn() -> MetaError) -> [ErrorCode; 4] {
    [
        ProxyError::from(make()).code(),
        ProxyError::from(LogError::from(make())).code(),
        BrokerError::from(make()).code(),
        ControllerError::from(CatalogError::from(make())).code(),
    ]
}

#[test]
fn a_metadata_error_has_its_own_code_in_proxy_broker_and_controller() {
    let non_retriable = || MetaError::Backend("key is not UTF-8".into());
    assert_eq!(codes_in_every_role(non_retriable), [ErrorCode::Internal; 4]);
    let unavailable = || MetaError::Unavailable {
        message: "no etcd leader".into(),
    };
    assert_eq!(
        codes_in_every_role(unavailable),
        [ErrorCode::Unavailable; 4]
    );
    let invalid = || MetaError::InvalidArgument("too many operations".into());
    assert_eq!(
        codes_in_every_role(invalid),
        [ErrorCode::InvalidArgument; 4]
    );
}

#[test]
fn corrupt_metadata_is_internal_and_not_retriable_in_every_role() {
    let bad = || BadValue {
        key: "/strata/c/topics/t".into(),
        detail: "expected `{`".into(),
    };
    let wrapped: [&dyn Coded; 4] = [
        &ProxyError::from(bad()),
        &ProxyError::from(LogError::from(bad())),
        &BrokerError::from(bad()),
        &ControllerError::from(CatalogError::from(bad())),
    ];
    for e in wrapped {
        assert_eq!(e.code(), ErrorCode::Internal, "{e}");
        assert!(!e.is_retriable(), "{e}");
    }
}
