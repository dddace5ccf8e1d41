//! A Kafka connection for tests: frames requests at an exact version and decodes answers, or
//! sends raw bytes, so tests see what the listener does byte by byte.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The client id every request carries.
pub const CLIENT_ID: &str = "strata-tests";

/// Longest a test waits for one answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct KafkaWire {
    stream: TcpStream,
    correlation_id: i32,
}

impl KafkaWire {
    /// A connection from `source` (a loopback address such as 127.0.0.2, to be another peer).
    pub async fn connect_from(source: std::net::IpAddr, addr: SocketAddr) -> anyhow::Result<Self> {
        let socket = if source.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.bind(SocketAddr::new(source, 0))?;
        let stream = socket
            .connect(addr)
            .await
            .with_context(|| format!("cannot connect from {source} to {addr}"))?;
        Ok(Self {
            stream,
            correlation_id: 0,
        })
    }

    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot connect to the Kafka listener at {addr}"))?;
        Ok(Self {
            stream,
            correlation_id: 0,
        })
    }

    /// The bytes of a request frame: length, header at the API's header version, body.
    pub fn frame<R: Request>(version: i16, correlation_id: i32, body: &R) -> anyhow::Result<Bytes> {
        let api =
            ApiKey::try_from(R::KEY).map_err(|_| anyhow::anyhow!("unknown key {}", R::KEY))?;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        header.encode(&mut buf, api.request_header_version(version))?;
        body.encode(&mut buf, version)?;
        let len = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&len.to_be_bytes());
        Ok(buf.freeze())
    }

    /// Sends `body` at `version` and decodes the answer at the same version.
    pub async fn call<R: Request>(
        &mut self,
        version: i16,
        body: &R,
    ) -> anyhow::Result<R::Response> {
        self.correlation_id += 1;
        let id = self.correlation_id;
        let frame = Self::frame(version, id, body)?;
        self.send_raw(&frame).await?;
        let mut answer = self
            .read_frame()
            .await?
            .context("the listener closed the connection instead of answering")?;
        let api =
            ApiKey::try_from(R::KEY).map_err(|_| anyhow::anyhow!("unknown key {}", R::KEY))?;
        let header = ResponseHeader::decode(&mut answer, api.response_header_version(version))?;
        if header.correlation_id != id {
            bail!(
                "answer to correlation id {} where {id} was sent",
                header.correlation_id
            );
        }
        let response = R::Response::decode(&mut answer, version)?;
        if answer.has_remaining() {
            bail!(
                "{} bytes left after the {api:?} v{version} answer",
                answer.remaining()
            );
        }
        Ok(response)
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.stream.write_all(bytes).await?;
        Ok(())
    }

    /// Ends the sending half, as a client does that has nothing more to say.
    pub async fn shutdown_write(&mut self) -> anyhow::Result<()> {
        self.stream.shutdown().await?;
        Ok(())
    }

    /// One answer frame without its length; `None` if the listener closed the connection.
    pub async fn read_frame(&mut self) -> anyhow::Result<Option<Bytes>> {
        let read = async {
            let mut len = [0u8; 4];
            match self.stream.read_exact(&mut len).await {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
                    ) =>
                {
                    return Ok(None);
                }
                Err(e) => return Err(e.into()),
            }
            let mut frame = vec![0u8; i32::from_be_bytes(len).max(0) as usize];
            self.stream.read_exact(&mut frame).await?;
            Ok(Some(Bytes::from(frame)))
        };
        tokio::time::timeout(ANSWER_TIMEOUT, read)
            .await
            .context("no answer from the Kafka listener")?
    }
}
