//! Access rules on both metadata backends: added once however often, listed and removed by
//! Kafka's filters, and decided by the authorizer, which sees changes within its cache's
//! lifetime.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use strata_catalog::Admin;
use strata_catalog::acls::{
    Access, AclFilter, AclRule, Authorizer, CLUSTER_NAME, Operation, PatternFilter, PatternType,
    Permission, RULES_CACHE_TTL, ResourceType,
};
use strata_clock::ManualClock;
use strata_meta::MetaStore;
use strata_meta::schema::Keyspace;
use strata_proto::{Coded as _, ErrorCode};

fn allow(
    principal: &str,
    resource_type: ResourceType,
    name: &str,
    operation: Operation,
) -> AclRule {
    AclRule {
        principal: principal.into(),
        host: "*".into(),
        resource_type,
        pattern_type: PatternType::Literal,
        resource_name: name.into(),
        operation,
        permission: Permission::Allow,
    }
}

async fn scenario(meta: Arc<dyn MetaStore>) {
    let admin = Admin::new(meta, Keyspace::new("acls-test").unwrap());
    let write = allow(
        "User:alice",
        ResourceType::Topic,
        "orders",
        Operation::Write,
    );
    let read_group = allow(
        "User:alice",
        ResourceType::Group,
        "billing",
        Operation::Read,
    );
    let prefix = AclRule {
        pattern_type: PatternType::Prefixed,
        resource_name: "ord".into(),
        operation: Operation::Describe,
        principal: "User:bob".into(),
        ..write.clone()
    };
    admin
        .create_acls(&[write.clone(), read_group.clone(), prefix.clone()])
        .await
        .unwrap();
    admin
        .create_acls(std::slice::from_ref(&write))
        .await
        .unwrap();
    admin
        .create_acls(&[write.clone(), write.clone()])
        .await
        .unwrap();
    assert_eq!(
        admin.acls(&AclFilter::default()).await.unwrap().len(),
        3,
        "one rule once"
    );

    let alices = AclFilter {
        principal: Some("User:alice".into()),
        ..AclFilter::default()
    };
    assert_eq!(admin.acls(&alices).await.unwrap().len(), 2);
    let on_orders = AclFilter {
        resource_type: Some(ResourceType::Topic),
        resource_name: Some("orders".into()),
        pattern: PatternFilter::Match,
        ..AclFilter::default()
    };
    assert_eq!(
        admin.acls(&on_orders).await.unwrap(),
        vec![write.clone(), prefix.clone()]
    );

    // A bad rule is refused and nothing of its batch is added.
    let bad = AclRule {
        resource_type: ResourceType::Cluster,
        ..write.clone()
    };
    let e = admin
        .create_acls(&[
            allow("User:carol", ResourceType::Topic, "t", Operation::Read),
            bad,
        ])
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidArgument);
    assert_eq!(admin.acls(&AclFilter::default()).await.unwrap().len(), 3);

    // The authorizer: rules decide when enforced; super users pass; changes show within the
    // cache's lifetime.
    let clock = Arc::new(ManualClock::new());
    let authorizer = Authorizer::new(admin.clone(), true, vec!["User:root".into()], clock.clone());
    let may = |p: Option<&'static str>, op, rt, name: &'static str| {
        let authorizer = &authorizer;
        async move { authorizer.authorize(p, op, rt, name).await.unwrap() }
    };
    assert!(
        may(
            Some("User:alice"),
            Operation::Write,
            ResourceType::Topic,
            "orders"
        )
        .await
    );
    assert!(
        may(
            Some("User:alice"),
            Operation::Describe,
            ResourceType::Topic,
            "orders"
        )
        .await
    );
    assert!(
        !may(
            Some("User:alice"),
            Operation::Read,
            ResourceType::Topic,
            "orders"
        )
        .await
    );
    assert!(
        may(
            Some("User:bob"),
            Operation::Describe,
            ResourceType::Topic,
            "orders.eu"
        )
        .await
    );
    assert!(!may(None, Operation::Describe, ResourceType::Topic, "orders").await);
    assert!(
        may(
            Some("User:root"),
            Operation::Alter,
            ResourceType::Cluster,
            CLUSTER_NAME
        )
        .await
    );

    let removed = admin
        .delete_acls(&AclFilter::exactly(&write))
        .await
        .unwrap();
    assert_eq!(removed, vec![write.clone()]);
    assert!(
        may(
            Some("User:alice"),
            Operation::Write,
            ResourceType::Topic,
            "orders"
        )
        .await,
        "the cached rules hold until their lifetime ends"
    );
    clock.advance(RULES_CACHE_TTL);
    assert!(
        !may(
            Some("User:alice"),
            Operation::Write,
            ResourceType::Topic,
            "orders"
        )
        .await
    );

    // A request's access: refusals say who lacks what and the rule that would allow it;
    // creating a topic takes Create on the cluster or on the topic; listings leave out the
    // rest.
    let authorizer = Arc::new(authorizer);
    let alice = Access::new(Some("User:alice".into()), authorizer.clone());
    let refusal = alice
        .check(Operation::Delete, ResourceType::Topic, "orders")
        .await
        .unwrap_err();
    assert_eq!(refusal.code(), ErrorCode::PermissionDenied);
    let message = refusal.to_string();
    assert!(
        message.contains("User:alice may not Delete topic `orders`")
            && message.contains(
                "strata acl add --allow-principal User:alice --operation Delete --topic orders"
            ),
        "{message}"
    );
    let anonymous = Access::new(None, authorizer.clone());
    let refusal = anonymous
        .check_cluster(Operation::Describe)
        .await
        .unwrap_err();
    assert!(refusal.to_string().contains("anonymous"), "{refusal}");
    assert!(alice.check_topic_creation("orders.new").await.is_err());
    let added = [
        allow(
            "User:alice",
            ResourceType::Topic,
            "orders.new",
            Operation::Create,
        ),
        allow(
            "User:carol",
            ResourceType::Cluster,
            CLUSTER_NAME,
            Operation::Create,
        ),
        allow(
            "User:alice",
            ResourceType::Topic,
            "payroll",
            Operation::Read,
        ),
        AclRule {
            pattern_type: PatternType::Prefixed,
            ..allow("User:dave", ResourceType::Topic, "logs.", Operation::Write)
        },
    ];
    admin.create_acls(&added).await.unwrap();
    clock.advance(RULES_CACHE_TTL);
    alice.check_topic_creation("orders.new").await.unwrap();
    assert!(alice.check_topic_creation("orders.other").await.is_err());
    let carol = Access::new(Some("User:carol".into()), authorizer.clone());
    carol.check_topic_creation("anything").await.unwrap();
    // Write on some topic (what Kafka asks of an idempotent producer without IdempotentWrite)
    // is judged from the rules, not from the topics that exist: no topic starts with `logs.`.
    let dave = Access::new(Some("User:dave".into()), authorizer.clone());
    assert!(dave.may_write_some_topic().await.unwrap());
    assert!(
        !alice.may_write_some_topic().await.unwrap(),
        "Create and Read are not Write"
    );
    assert!(!anonymous.may_write_some_topic().await.unwrap());
    let root = Access::new(Some("User:root".into()), authorizer.clone());
    assert!(root.may_write_some_topic().await.unwrap());
    let visible = alice
        .retain(
            vec!["orders", "payroll", "orders.new"],
            Operation::Describe,
            ResourceType::Topic,
            |t| t,
        )
        .await
        .unwrap();
    assert_eq!(
        visible,
        ["payroll"],
        "Create implies no Describe; Read does"
    );
    for rule in &added {
        admin.delete_acls(&AclFilter::exactly(rule)).await.unwrap();
    }

    let open = Authorizer::new(admin.clone(), false, Vec::new(), clock);
    assert!(
        open.authorize(None, Operation::Delete, ResourceType::Topic, "orders")
            .await
            .unwrap()
    );
    assert!(
        open.authorize_some(None, Operation::Write, ResourceType::Topic)
            .await
            .unwrap()
    );
    assert_eq!(
        admin
            .delete_acls(&AclFilter::default())
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(admin.acls(&AclFilter::default()).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acls_on_embedded_store() {
    let (_dir, meta) = strata_meta::testing::embedded().await;
    scenario(meta).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acls_on_etcd() {
    let (_etcd, meta) = strata_meta::testing::etcd().await;
    scenario(meta).await;
}
