//! Accepted connections, TLS or plain, with who is on the other end.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::server::TlsStream;

use crate::ServerTls;

/// A handshake that has not finished by then is dropped, so a client that connects and says
/// nothing holds only its own socket, and not for long.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a listener speaks over TLS, announced by ALPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alpn {
    /// gRPC: HTTP/2 only.
    Grpc,
    /// The admin API and the health endpoints: HTTP/2 or HTTP/1.1.
    Http,
    /// The Kafka protocol, which has no ALPN name.
    None,
}

/// The other end of a connection. tonic puts it in every request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub addr: SocketAddr,
    /// `User:<name>` from the client certificate, when the client presented one.
    pub principal: Option<String>,
    pub tls: bool,
}

/// An accepted connection.
#[derive(Debug)]
pub struct Conn {
    io: Io,
    peer: Peer,
}

#[derive(Debug)]
enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Conn {
    pub fn peer(&self) -> &Peer {
        &self.peer
    }
}

/// A TCP listener's connections, through the TLS handshake when the process has TLS.
///
/// The handshakes run as tasks the stream owns, side by side: one slow or silent client does
/// not hold up the next. Dropping the stream ends them.
#[derive(Debug)]
pub struct Incoming {
    listener: TcpListener,
    tls: Option<Arc<ServerTls>>,
    kind: Alpn,
    handshakes: JoinSet<Option<Conn>>,
    backoff: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Incoming {
    pub fn new(listener: TcpListener, tls: Option<Arc<ServerTls>>, kind: Alpn) -> Self {
        Self {
            listener,
            tls,
            kind,
            handshakes: JoinSet::new(),
            backoff: None,
        }
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The next connection that is ready to serve; it never fails (accept errors are logged
    /// and retried after a pause).
    pub async fn accept(&mut self) -> Conn {
        use futures::StreamExt as _;
        loop {
            if let Some(Ok(conn)) = self.next().await {
                return conn;
            }
        }
    }

    fn start(&mut self, stream: TcpStream, addr: SocketAddr) -> Option<Conn> {
        // Small answers (acks) must leave at once: with Nagle's algorithm on, an ack waits for
        // the client's delayed ACK, about 40 ms.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::warn!(error = %e, "cannot set TCP_NODELAY");
        }
        let Some(tls) = self.tls.clone() else {
            let peer = Peer {
                addr,
                principal: None,
                tls: false,
            };
            return Some(Conn {
                io: Io::Plain(stream),
                peer,
            });
        };
        let config = tls.config(self.kind);
        self.handshakes.spawn(async move {
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            let shake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
            let stream = match shake {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    tls.metrics().handshake_failures.inc();
                    tracing::info!(peer = %addr, error = %e, "TLS handshake failed");
                    return None;
                }
                Err(_) => {
                    tls.metrics().handshake_failures.inc();
                    tracing::info!(peer = %addr, "TLS handshake timed out");
                    return None;
                }
            };
            let principal = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .and_then(|cert| crate::principal::principal(cert, tls.principal_rule()));
            let peer = Peer {
                addr,
                principal,
                tls: true,
            };
            Some(Conn {
                io: Io::Tls(Box::new(stream)),
                peer,
            })
        });
        None
    }
}

impl Stream for Incoming {
    type Item = io::Result<Conn>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(pause) = this.backoff.as_mut() {
                if pause.as_mut().poll(cx).is_pending() {
                    break;
                }
                this.backoff = None;
            }
            match this.listener.poll_accept(cx) {
                Poll::Ready(Ok((stream, addr))) => {
                    if let Some(conn) = this.start(stream, addr) {
                        return Poll::Ready(Some(Ok(conn)));
                    }
                }
                Poll::Ready(Err(e)) => {
                    // Out of file descriptors, mostly: pause instead of spinning.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    this.backoff = Some(Box::pin(tokio::time::sleep(Duration::from_millis(100))));
                }
                Poll::Pending => break,
            }
        }
        while let Poll::Ready(Some(done)) = this.handshakes.poll_join_next(cx) {
            if let Ok(Some(conn)) = done {
                return Poll::Ready(Some(Ok(conn)));
            }
        }
        Poll::Pending
    }
}

/// [`Incoming`] for axum's `serve`.
#[derive(Debug)]
pub struct HttpListener(pub Incoming);

impl axum::serve::Listener for HttpListener {
    type Io = Conn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Conn, SocketAddr) {
        let conn = self.0.accept().await;
        let addr = conn.peer.addr;
        (conn, addr)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// For axum's `into_make_service_with_connect_info::<Peer>()`: handlers and middleware find
/// the connection's [`Peer`], principal included, as `ConnectInfo<Peer>`.
impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, HttpListener>>
    for Peer
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, HttpListener>) -> Self {
        stream.io().peer.clone()
    }
}

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = Peer;

    fn connect_info(&self) -> Peer {
        self.peer.clone()
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Io::Plain(s) => s.is_write_vectored(),
            Io::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
