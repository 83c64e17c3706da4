//! The listener: every connection bounded in time and in number.
//!
//! `axum::serve` runs hyper without a timer, so a connection that never finishes its
//! headers, or sits idle between requests, stays open for ever: 20,100 of them exhausted
//! the process's file descriptors and `/healthz` stopped answering. Here hyper gets a
//! timer (header-read timeout, which also closes idle keep-alive connections, and HTTP/2
//! keep-alive pings), open connections are capped below the descriptor limit, and a
//! connection over the cap is closed at once, so the listener sheds load instead of
//! dying. Request bodies are bounded by [`crate::http::body`].

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

/// Descriptors kept back from the connection cap for the audit database, Qdrant, the
/// model's connections and files.
const RESERVED_DESCRIPTORS: u64 = 1_024;
/// Largest request head hyper buffers (our own, lower limits answer in JSON first).
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// How long a shutdown waits for requests in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Limits of the connections themselves, below any request.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// A request's head must arrive within this; an idle keep-alive connection is closed
    /// after it.
    pub header_read_timeout: Duration,
    /// Connections open at once; more are closed as they arrive.
    pub max_connections: usize,
    /// HTTP/2 streams one connection may have open.
    pub max_streams_per_connection: u32,
}

impl ConnectionLimits {
    /// The connection cap when none is configured: what the process's descriptor limit
    /// allows after raising its soft limit to the hard one, less a reserve.
    pub fn default_max_connections() -> usize {
        let limit = match rlimit::increase_nofile_limit(u64::MAX) {
            Ok(limit) => limit,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the file descriptor limit; assuming 1024");
                1_024
            }
        };
        limit.saturating_sub(RESERVED_DESCRIPTORS).max(64) as usize
    }
}

/// Connections the kernel may hold completed but not yet accepted. Tokio's default
/// (1,024) overflows in a burst of connects, and an overflowing queue drops handshakes
/// silently; the kernel caps this at `net.core.somaxconn` anyway.
const ACCEPT_BACKLOG: u32 = 4_096;

/// Listens on `addr` (host:port, first resolved address) with [`ACCEPT_BACKLOG`].
pub async fn bind(addr: &str) -> std::io::Result<TcpListener> {
    let address = tokio::net::lookup_host(addr)
        .await?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "the address resolves to nothing"))?;
    let socket = if address.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(ACCEPT_BACKLOG)
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets requests in flight
/// finish for up to [`SHUTDOWN_GRACE`].
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let builder = connection_builder(&limits);
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors or a connection reset before accept: wait a moment
                    // rather than spin, and keep listening.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = open.clone().try_acquire_owned() else {
            metrics::counter!("teller_connections_shed_total").increment(1);
            drop(tcp);
            continue;
        };
        // Streamed replies are many small writes: without TCP_NODELAY, Nagle's algorithm
        // holds each delta back until the previous one is acknowledged.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        // The peer's address, for the per-IP rate limits.
        let service = TowerToHyperService::new(router.clone().map_request(
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
                request
            },
        ));
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let header_read_timeout = limits.header_read_timeout;
        tokio::spawn(async move {
            metrics::gauge!("teller_connections_open").increment(1.0);
            // The protocol is sniffed from the first bytes, before hyper's header timer
            // runs: a client that connects and sends nothing is closed here.
            if first_byte_within(&tcp, header_read_timeout).await {
                let connection = builder.serve_connection_with_upgrades(TokioIo::new(tcp), service);
                if let Err(e) = watcher.watch(connection.into_owned()).await {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
            }
            metrics::gauge!("teller_connections_open").decrement(1.0);
            drop(slot);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(SHUTDOWN_GRACE) => tracing::warn!("requests still in flight at shutdown were cut off"),
    }
    Ok(())
}

/// Whether the client sends anything within `limit` (a closed connection counts as
/// sending: hyper then ends it at once).
async fn first_byte_within(tcp: &tokio::net::TcpStream, limit: Duration) -> bool {
    let mut byte = [0u8; 1];
    tokio::time::timeout(limit, tcp.peek(&mut byte)).await.is_ok()
}

fn connection_builder(limits: &ConnectionLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_HEAD_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_streams_per_connection)
        .max_header_list_size(MAX_HEAD_BYTES as u32)
        .keep_alive_interval(limits.header_read_timeout)
        .keep_alive_timeout(limits.header_read_timeout);
    builder
}
