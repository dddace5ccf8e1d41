//! One gRPC channel to a proxy, shared by every client built from it.

use std::time::Duration;

use strata_proto::v1::strata_client::StrataClient;
use tonic::transport::{Channel, Endpoint};

use crate::error::{Error, Result};

/// Largest message the SDK accepts from a proxy (fetch answers carry up to a few MiB).
const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// A connection to a Strata proxy (or to any of several behind one address).
///
/// Cheap to clone: clones share one HTTP/2 channel, which reconnects by itself after a proxy
/// restart.
///
/// ```no_run
/// # async fn example() -> strata_client::Result<()> {
/// use strata_client::{Admin, Connection, Consumer, ConsumerConfig};
/// let connection = Connection::connect("127.0.0.1:7070").await?;
/// let admin = Admin::new(connection.clone());
/// let consumer = Consumer::new(connection, ConsumerConfig::default())?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Connection {
    server: String,
    client: StrataClient<Channel>,
}

impl Connection {
    /// Connects to `server` (`host:port` or `http://host:port`), failing fast when nothing
    /// answers there.
    ///
    /// ```no_run
    /// # async fn example() -> strata_client::Result<()> {
    /// let connection = strata_client::Connection::connect("127.0.0.1:7070").await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(server: &str) -> Result<Self> {
        let endpoint = endpoint(server)?;
        let channel = endpoint.connect().await.map_err(|e| Error::Connect {
            server: server.to_owned(),
            message: source_chain(&e),
        })?;
        Ok(Self::from_channel(server, channel))
    }

    /// A connection that dials on first use, so building a client never fails on a proxy that
    /// is still starting.
    ///
    /// ```no_run
    /// # async fn example() -> strata_client::Result<()> {
    /// let connection = strata_client::Connection::lazy("proxy.strata.svc:7070")?;
    /// # Ok(()) }
    /// ```
    pub fn lazy(server: &str) -> Result<Self> {
        Ok(Self::from_channel(server, endpoint(server)?.connect_lazy()))
    }

    fn from_channel(server: &str, channel: Channel) -> Self {
        let client = StrataClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        Self {
            server: server.to_owned(),
            client,
        }
    }

    /// The address this connection dials.
    ///
    /// ```no_run
    /// # async fn example() -> strata_client::Result<()> {
    /// let connection = strata_client::Connection::connect("127.0.0.1:7070").await?;
    /// assert_eq!(connection.server(), "127.0.0.1:7070");
    /// # Ok(()) }
    /// ```
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The generated gRPC client, for calls the SDK does not wrap.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
    /// let connection = strata_client::Connection::connect("127.0.0.1:7070").await?;
    /// let request = strata_proto::v1::MetadataRequest::default();
    /// let answer = connection.grpc().metadata(request).await?.into_inner();
    /// println!("{} topics", answer.topics.len());
    /// # Ok(()) }
    /// ```
    pub fn grpc(&self) -> StrataClient<Channel> {
        self.client.clone()
    }

    /// Maps a failed call to an [`Error`], naming the server on transport failures.
    pub(crate) fn call_error(&self, status: tonic::Status) -> Error {
        if status.code() == tonic::Code::Unavailable
            && status
                .metadata()
                .get(strata_proto::ERROR_CODE_METADATA)
                .is_none()
        {
            Error::Connect {
                server: self.server.clone(),
                message: status.message().to_owned(),
            }
        } else {
            match strata_proto::code_of_status(&status) {
                Some(code) => Error::Server {
                    code,
                    message: status.message().to_owned(),
                },
                None => Error::Transport(status),
            }
        }
    }
}

fn endpoint(server: &str) -> Result<Endpoint> {
    let url = if server.contains("://") {
        server.to_owned()
    } else {
        format!("http://{server}")
    };
    Ok(Endpoint::from_shared(url)
        .map_err(|e| Error::InvalidConfig(format!("server address `{server}`: {e}")))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(20))
        .keep_alive_while_idle(true))
}

/// The error with its causes, since tonic's transport errors hide the useful part in sources.
fn source_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
