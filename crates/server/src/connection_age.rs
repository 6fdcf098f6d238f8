//! The end of a connection that has reached `MAX_CONNECTION_AGE_SECS`: tonic sends GOAWAY at the
//! age (its `max_connection_age`, without a grace), and this closes the connection once the calls
//! it still carries have had the drain window (`SHUTDOWN_TIMEOUT_SECS`) to finish.
//!
//! Why not tonic's own `max_connection_age_grace`: in tonic 0.14 a grace replaces the graceful
//! step instead of following it (the connection sleeps age + grace, then is closed by force, and
//! no GOAWAY is ever sent), so every client connection was cut with whatever calls it carried.
//! Here the close comes from below: past its deadline the socket answers every read and write
//! with an error, which ends the HTTP/2 connection (and the TLS session above it, if any).

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
    time::Sleep,
};
use tonic::transport::server::{Connected, TcpConnectInfo};

/// An accepted connection that stops working at its deadline, if it has one.
#[derive(Debug)]
pub struct AgingConnection {
    stream: TcpStream,
    closes: Option<Pin<Box<Sleep>>>,
}

impl AgingConnection {
    /// `stream`, closed `lifetime` after now (never, without one).
    pub fn new(stream: TcpStream, lifetime: Option<Duration>) -> Self {
        Self { stream, closes: lifetime.map(|lifetime| Box::pin(tokio::time::sleep(lifetime))) }
    }

    /// An error once the deadline has passed; otherwise registers the task to be woken then.
    fn past_deadline(&mut self, cx: &mut Context<'_>) -> Option<io::Error> {
        let closes = self.closes.as_mut()?;
        closes.as_mut().poll(cx).is_ready().then(|| {
            io::Error::new(io::ErrorKind::TimedOut, "connection past MAX_CONNECTION_AGE_SECS and its drain window")
        })
    }
}

impl Connected for AgingConnection {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for AgingConnection {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if let Some(error) = self.past_deadline(cx) {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for AgingConnection {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if let Some(error) = self.past_deadline(cx) {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if let Some(error) = self.past_deadline(cx) {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
