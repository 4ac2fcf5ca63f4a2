//! A connection whose writes give up when the client stops reading. A client that reads a
//! little at least once per limit keeps its connection: the limit is on a stall, not on the
//! whole reply.
//!
//! Why: hyper has timeouts for reading a request but none for writing the reply, so a client
//! that never reads a large reply (60 slices are about 7 MB of JSON) would hold the socket and
//! the buffered reply forever.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// `inner`, with every write (or flush) that makes no progress for `limit` failing with
/// [`io::ErrorKind::TimedOut`], which ends the connection. Reads pass through.
pub struct WriteTimeout<S> {
    inner: S,
    limit: Duration,
    /// Started when a write first stalls; cleared when one makes progress.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<S> WriteTimeout<S> {
    /// Wrap `inner`.
    pub fn new(inner: S, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            stalled: None,
        }
    }

    /// `result` of a write or flush, or a time-out error once a pending one has waited `limit`.
    fn watch<T>(&mut self, cx: &mut Context<'_>, result: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if result.is_ready() {
            self.stalled = None;
            return result;
        }
        let limit = self.limit;
        let timer = self.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client read nothing more of the reply within the write timeout",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteTimeout<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteTimeout<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, result)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, result)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, result)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.watch(cx, result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A reader that stops reading stalls the writer's buffer; the write then times out
    /// instead of waiting forever, and a reader that keeps up never sees a time-out.
    #[tokio::test]
    async fn stalled_writes_time_out_and_flowing_ones_do_not() {
        let (client, server) = tokio::io::duplex(1024);
        let mut writer = WriteTimeout::new(server, Duration::from_millis(100));
        let started = std::time::Instant::now();
        let err = writer.write_all(&[7u8; 64 * 1024]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(5));
        drop(client);

        let (mut client, server) = tokio::io::duplex(1024);
        let mut writer = WriteTimeout::new(server, Duration::from_millis(100));
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut chunk = [0u8; 256];
            loop {
                // Slower in all than the limit, but never stalled for it.
                tokio::time::sleep(Duration::from_millis(2)).await;
                match client.read(&mut chunk).await.unwrap() {
                    0 => break got,
                    n => got.extend_from_slice(&chunk[..n]),
                }
            }
        });
        writer.write_all(&[7u8; 64 * 1024]).await.unwrap();
        writer.shutdown().await.unwrap();
        drop(writer);
        assert_eq!(reader.await.unwrap().len(), 64 * 1024);
    }
}
