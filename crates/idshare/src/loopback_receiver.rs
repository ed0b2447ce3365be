//! A minimal HTTP/1.1 receiver on loopback for webhook deliveries, shared by `idshare bench
//! webhooks` and `idshare demo`: reads each request (headers and a `Content-Length` body,
//! keep-alive honoured), answers `200` with an empty body, then hands it over. Deliveries are
//! plain `POST`s with a length, so nothing more is needed.

use std::sync::Arc;

use anyhow::Result;
use time::OffsetDateTime;
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
};

/// The largest request body the receiver reads.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// One request that reached the receiver, already answered.
pub struct Received {
    /// The request path (`/hook/0`, …).
    pub path: String,
    /// The `Persona-Signature` header (empty when absent).
    pub signature: String,
    pub body: Vec<u8>,
    /// When the whole request had been read.
    pub at: OffsetDateTime,
}

/// Starts the receiver on `127.0.0.1:0`; returns its base URL (`http://127.0.0.1:port`).
/// `handle` is called with every request after it was answered.
pub async fn start(handle: impl Fn(Received) + Send + Sync + 'static) -> Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let handle = Arc::new(handle);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let handle = handle.clone();
            tokio::spawn(async move {
                // A connection the client closes ends here; nothing to report.
                let _ = serve_connection(socket, handle.as_ref()).await;
            });
        }
    });
    Ok(base)
}

async fn serve_connection(
    socket: TcpStream,
    handle: &(impl Fn(Received) + ?Sized),
) -> std::io::Result<()> {
    socket.set_nodelay(true)?;
    let mut stream = BufReader::new(socket);
    let mut line = String::new();
    loop {
        line.clear();
        if stream.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let path = line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        let mut length = 0usize;
        let mut signature = String::new();
        loop {
            line.clear();
            if stream.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0).min(MAX_BODY);
                } else if name.eq_ignore_ascii_case("persona-signature") {
                    value.trim().clone_into(&mut signature);
                }
            }
        }
        let mut body = vec![0; length];
        stream.read_exact(&mut body).await?;
        let at = OffsetDateTime::now_utc();
        stream
            .get_mut()
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .await?;
        handle(Received {
            path,
            signature,
            body,
            at,
        });
    }
}
