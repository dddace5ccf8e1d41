#![warn(missing_docs)]

//! The Rust SDK of Strata: [`Producer`], [`Consumer`] and [`Admin`], talking gRPC to a proxy.
//!
//! Any proxy serves any request, so point clients at one address (a load balancer, a
//! Kubernetes Service, or `127.0.0.1:7070` for `strata standalone`).
//!
//! ```no_run
//! use strata_client::{Admin, Consumer, Offset, Producer, ProducerRecord};
//! use std::time::Duration;
//!
//! # async fn example() -> strata_client::Result<()> {
//! let admin = Admin::connect("127.0.0.1:7070").await?;
//! admin.create_topic("orders", 4).await?;
//!
//! let producer = Producer::builder("127.0.0.1:7070").build().await?;
//! let sent = producer
//!     .send(ProducerRecord::new("orders", "hello").with_key("customer-7"))
//!     .await?;
//! println!("stored at {}/{} offset {}", sent.topic, sent.partition, sent.offset);
//!
//! let mut consumer = Consumer::builder("127.0.0.1:7070")
//!     .group("billing")
//!     .auto_offset_reset(Offset::Earliest)
//!     .build()
//!     .await?;
//! consumer.subscribe(&["orders"]).await?;
//! for record in consumer.poll(Duration::from_secs(1)).await? {
//!     println!("{}: {:?}", record.offset, record.value);
//! }
//! consumer.commit_sync().await?;
//! consumer.close().await?;
//! # Ok(()) }
//! ```
//!
//! Runnable programs are in `client/examples/`.

pub mod admin;
mod connection;
mod consumer;
mod credentials;
mod error;
mod partitioner;
mod producer;
mod tls;
mod types;

pub use admin::{
    Admin, BroadcastMember, GroupDescription, GroupListing, GroupMember, PartitionInfo,
    PartitionLag, TopicInfo,
};
pub use connection::{Connection, GrpcClient};
pub use consumer::{
    Assignor, Consumer, ConsumerBuilder, ConsumerConfig, ConsumerRecord, Nacked, RetryPolicy,
};
pub use credentials::{Authorization, ConnectOptions, Token};
pub use error::{Error, Result};
pub use partitioner::{Partitioner, murmur2, partition_for_key};
pub use producer::{
    DeliveryFuture, Producer, ProducerBuilder, ProducerConfig, ProducerRecord, RecordMetadata,
};
pub use strata_format::Compression;
pub use strata_proto::ErrorCode;
pub use tls::Tls;
pub use types::{Ack, Offset, TopicPartition};
