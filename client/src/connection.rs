//! One gRPC channel to a proxy at a time, shared by every client built from it, moving to
//! another proxy when the current one cannot be reached.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use strata_clock::RandomSource as _;
use tokio::time::Instant;

use strata_proto::v1::strata_client::StrataClient;
use tonic::transport::{Channel, Endpoint};

use crate::credentials::{Authorization, ConnectOptions};
use crate::error::{Error, Result};
use crate::tls::Tls;

/// The generated gRPC client over a [`Connection`]'s channel, sending its credentials.
pub type GrpcClient =
    StrataClient<tonic::service::interceptor::InterceptedService<Channel, Authorization>>;

/// Largest message the SDK accepts from a proxy (fetch answers carry up to a few MiB).
const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// A connection to Strata's proxies: one of several addresses at a time, moving to the next
/// when the current one stops answering.
///
/// Cheap to clone: clones share one HTTP/2 channel, which reconnects by itself after a proxy
/// restart. Given several addresses (`a:7070,b:7070`, or a name that resolves to several),
/// each connection starts at a random one, so clients spread over the proxies; when a call
/// fails because the proxy cannot be reached (killed, stopped, or gone after telling its
/// clients to leave), the connection moves to the next address, and the call's retry — every
/// SDK client retries such failures, idempotently for produces — goes there.
///
/// ```no_run
/// # async fn example() -> strata_client::Result<()> {
/// use strata_client::{Admin, Connection, Consumer, ConsumerConfig};
/// let connection = Connection::connect("127.0.0.1:7070,127.0.0.1:7170").await?;
/// let admin = Admin::new(connection.clone());
/// let consumer = Consumer::new(connection, ConsumerConfig::default())?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Connection {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    servers: Vec<String>,
    options: ConnectOptions,
    current: RwLock<Current>,
    moves: AtomicU64,
}

#[derive(Debug)]
struct Current {
    index: usize,
    client: GrpcClient,
    /// When the connection last moved; `None` before its first move.
    moved_at: Option<Instant>,
}

/// After a move, failures of calls made before it keep arriving for a moment; they must not
/// move the connection again, past a proxy that works.
const SETTLE: Duration = Duration::from_secs(1);

impl Connection {
    /// Connects to `servers` (`host:port` or `http://host:port`, comma-separated for several
    /// proxies), failing fast when none of them answers.
    ///
    /// ```no_run
    /// # async fn example() -> strata_client::Result<()> {
    /// let connection = strata_client::Connection::connect("127.0.0.1:7070").await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(servers: &str) -> Result<Self> {
        Self::connect_with(servers, ConnectOptions::default()).await
    }

    /// [`Connection::connect`], over TLS when `tls` is given.
    pub async fn connect_with_tls(servers: &str, tls: Option<Tls>) -> Result<Self> {
        Self::connect_with(servers, ConnectOptions { tls, token: None }).await
    }

    /// [`Connection::connect`] with TLS and credentials as `options` say.
    pub async fn connect_with(servers: &str, options: ConnectOptions) -> Result<Self> {
        let servers = resolve(parse_servers(servers)?).await;
        let first = strata_clock::ThreadRandom.below(servers.len());
        let mut failures = Vec::new();
        for step in 0..servers.len() {
            let index = (first + step) % servers.len();
            let server = &servers[index];
            match endpoint(server, options.tls.as_ref())?.connect().await {
                Ok(channel) => return Ok(Self::new(servers, options, index, channel)),
                Err(e) => failures.push(format!("{server}: {}", source_chain(&e))),
            }
        }
        Err(Error::Connect {
            server: servers.join(","),
            message: failures.join("; "),
        })
    }

    /// A connection that dials on first use, so building a client never fails on a proxy that
    /// is still starting.
    ///
    /// ```no_run
    /// # async fn example() -> strata_client::Result<()> {
    /// let connection = strata_client::Connection::lazy("proxy.strata.svc:7070")?;
    /// # Ok(()) }
    /// ```
    pub fn lazy(servers: &str) -> Result<Self> {
        Self::lazy_with(servers, ConnectOptions::default())
    }

    /// [`Connection::lazy`], over TLS when `tls` is given.
    pub fn lazy_with_tls(servers: &str, tls: Option<Tls>) -> Result<Self> {
        Self::lazy_with(servers, ConnectOptions { tls, token: None })
    }

    /// [`Connection::lazy`] with TLS and credentials as `options` say.
    pub fn lazy_with(servers: &str, options: ConnectOptions) -> Result<Self> {
        let servers = parse_servers(servers)?;
        let index = strata_clock::ThreadRandom.below(servers.len());
        let channel = endpoint(&servers[index], options.tls.as_ref())?.connect_lazy();
        Ok(Self::new(servers, options, index, channel))
    }

    fn new(servers: Vec<String>, options: ConnectOptions, index: usize, channel: Channel) -> Self {
        let client = client(channel, &options);
        Self {
            inner: Arc::new(Inner {
                servers,
                options,
                current: RwLock::new(Current {
                    index,
                    client,
                    moved_at: None,
                }),
                moves: AtomicU64::new(0),
            }),
        }
    }

    /// The address this connection dials now.
    ///
    /// ```no_run
    /// # async fn example() -> strata_client::Result<()> {
    /// let connection = strata_client::Connection::connect("127.0.0.1:7070").await?;
    /// assert_eq!(connection.server(), "127.0.0.1:7070");
    /// # Ok(()) }
    /// ```
    pub fn server(&self) -> String {
        self.inner.servers[self.current().index].clone()
    }

    /// Every address this connection may use.
    pub fn servers(&self) -> &[String] {
        &self.inner.servers
    }

    /// How many times the connection moved to another proxy because its own could not be
    /// reached (each move is also logged as a warning).
    pub fn moves(&self) -> u64 {
        self.inner.moves.load(Ordering::Relaxed)
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
    pub fn grpc(&self) -> GrpcClient {
        self.current().client.clone()
    }

    fn current(&self) -> std::sync::RwLockReadGuard<'_, Current> {
        // A panic while holding the lock left a valid `Current`: keep using it.
        self.inner
            .current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Maps a failed call to an [`Error`], naming the server on transport failures, and moves
    /// to the next address when the proxy could not be reached.
    pub(crate) fn call_error(&self, status: tonic::Status) -> Error {
        let from_strata = status
            .metadata()
            .get(strata_proto::ERROR_CODE_METADATA)
            .is_some();
        // A status whose source is a transport error was made by this side, not sent by a
        // server: the connection broke under the call (the proxy died, or sent GOAWAY while
        // the request was on its way, which hyper reports as an internal h2 error), so the
        // proxy is going away and a retry elsewhere is safe.
        let broken = std::error::Error::source(&status)
            .is_some_and(|source| source.is::<tonic::transport::Error>());
        if !from_strata && (status.code() == tonic::Code::Unavailable || broken) {
            let server = self.server();
            self.move_on(&status);
            Error::Connect {
                server,
                message: source_chain(&status),
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

    /// Moves to the next address, unless there is no other or the last move was too recent
    /// for this failure to be the new proxy's.
    fn move_on(&self, status: &tonic::Status) {
        let servers = &self.inner.servers;
        if servers.len() < 2 {
            return;
        }
        let mut current = self
            .inner
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if current.moved_at.is_some_and(|at| at.elapsed() < SETTLE) {
            return;
        }
        let next = (current.index + 1) % servers.len();
        let Ok(endpoint) = endpoint(&servers[next], self.inner.options.tls.as_ref()) else {
            return;
        };
        tracing::warn!(
            from = %servers[current.index], to = %servers[next], error = %status.message(),
            "proxy unreachable; moving to the next one"
        );
        *current = Current {
            index: next,
            client: client(endpoint.connect_lazy(), &self.inner.options),
            moved_at: Some(Instant::now()),
        };
        self.inner.moves.fetch_add(1, Ordering::Relaxed);
    }
}

fn client(channel: Channel, options: &ConnectOptions) -> GrpcClient {
    StrataClient::with_interceptor(channel, Authorization::new(options.token.clone()))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// The comma-separated addresses, trimmed; at least one.
fn parse_servers(servers: &str) -> Result<Vec<String>> {
    let list: Vec<String> = servers
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if list.is_empty() {
        return Err(Error::InvalidConfig(format!(
            "server address `{servers}`: give host:port, or several separated by commas"
        )));
    }
    Ok(list)
}

/// A single name that resolves to several addresses (a headless Kubernetes Service, a DNS
/// round robin) stands for all of them; anything else is kept as given.
async fn resolve(servers: Vec<String>) -> Vec<String> {
    let [single] = servers.as_slice() else {
        return servers;
    };
    if single.contains("://") {
        return servers;
    }
    let single = single.clone();
    match tokio::net::lookup_host(single.as_str()).await {
        Ok(found) => {
            // `localhost` resolves to 127.0.0.1 and ::1, and servers often listen on one:
            // prefer IPv4 addresses when there are any.
            let found: Vec<std::net::SocketAddr> = found.collect();
            let v4: Vec<String> = found
                .iter()
                .filter(|a| a.is_ipv4())
                .map(ToString::to_string)
                .collect();
            let all = if v4.is_empty() {
                found.iter().map(ToString::to_string).collect()
            } else {
                v4
            };
            if all.len() > 1 { all } else { servers }
        }
        Err(_) => servers,
    }
}

fn endpoint(server: &str, tls: Option<&Tls>) -> Result<Endpoint> {
    let url = match (server.contains("://"), tls) {
        (true, _) => server.to_owned(),
        (false, Some(_)) => format!("https://{server}"),
        (false, None) => format!("http://{server}"),
    };
    let mut endpoint = Endpoint::from_shared(url)
        .map_err(|e| Error::InvalidConfig(format!("server address `{server}`: {e}")))?;
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls.tonic()).map_err(|e| {
            Error::InvalidConfig(format!("TLS settings for `{server}`: {}", source_chain(&e)))
        })?;
    }
    Ok(endpoint
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        // Fetch answers of a megabyte on many streams at once: with h2's default 64 KiB stream
        // window a reader stalls on window updates, and more so when TLS adds to each round
        // trip; the adaptive window grows to the connection's bandwidth-delay product.
        .http2_adaptive_window(true)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn unreachable() -> tonic::Status {
        tonic::Status::unavailable("tcp connect error")
    }

    #[test]
    fn addresses_are_a_comma_separated_list_of_at_least_one() {
        assert_eq!(
            parse_servers(" a:1, b:2 ,").unwrap(),
            vec!["a:1".to_owned(), "b:2".to_owned()]
        );
        assert!(matches!(parse_servers(" , "), Err(Error::InvalidConfig(_))));
    }

    #[tokio::test(start_paused = true)]
    async fn an_unreachable_proxy_moves_the_connection_once_per_settle_window() {
        let connection = Connection::lazy("127.0.0.1:1,127.0.0.1:2,127.0.0.1:3").unwrap();
        let first = connection.server();
        let error = connection.call_error(unreachable());
        assert!(error.is_retriable(), "{error}");
        let second = connection.server();
        assert_ne!(second, first);
        assert_eq!(connection.moves(), 1);
        // Failures of calls made before the move do not move it past the new proxy.
        connection.call_error(unreachable());
        assert_eq!(
            (connection.server(), connection.moves()),
            (second.clone(), 1)
        );
        tokio::time::advance(SETTLE).await;
        connection.call_error(unreachable());
        assert_eq!(connection.moves(), 2);
        assert!(connection.server() != second && connection.server() != first);
    }

    #[tokio::test(start_paused = true)]
    async fn a_servers_refusal_does_not_move_the_connection() {
        let connection = Connection::lazy("127.0.0.1:1,127.0.0.1:2").unwrap();
        let status = strata_proto::status(
            strata_proto::ErrorCode::Unavailable,
            "the metadata store is down",
        );
        let error = connection.call_error(status);
        assert!(matches!(error, Error::Server { .. }), "{error}");
        assert_eq!(connection.moves(), 0);
        let single = Connection::lazy("127.0.0.1:1").unwrap();
        single.call_error(unreachable());
        assert_eq!(single.moves(), 0, "nowhere to move to");
    }
}
