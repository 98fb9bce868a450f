//! Bridges between blocking tar code (in `spawn_blocking`) and async request/response
//! bodies: a `Write` whose bytes come out of an `AsyncRead`, and a blocking `Read` fed from
//! a response body.

use bytes::Bytes;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::mpsc;

/// The writing end: blocking `Write` (use from a blocking thread only).
pub struct ChanWriter {
    tx: mpsc::Sender<Bytes>,
}

/// The reading end: `AsyncRead` for a streamed request body.
pub struct ChanReader {
    rx: mpsc::Receiver<Bytes>,
    cur: Bytes,
}

/// A bounded pipe (a few 64 KiB chunks in flight).
pub fn pipe() -> (ChanWriter, ChanReader) {
    let (tx, rx) = mpsc::channel(8);
    (
        ChanWriter { tx },
        ChanReader {
            rx,
            cur: Bytes::new(),
        },
    )
}

impl std::io::Write for ChanWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let n = buf.len().min(64 * 1024);
        self.tx
            .blocking_send(Bytes::copy_from_slice(&buf[..n]))
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::BrokenPipe, "request body closed")
            })?;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl AsyncRead for ChanReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.cur.is_empty() {
                let n = this.cur.len().min(buf.remaining());
                buf.put_slice(&this.cur.split_to(n));
                return Poll::Ready(Ok(()));
            }
            match this.rx.poll_recv(cx) {
                Poll::Ready(Some(b)) => this.cur = b,
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// A blocking `Read` over a response body (pumped by a task on the runtime).
pub struct BodyReader {
    rx: mpsc::Receiver<std::io::Result<Bytes>>,
    cur: Bytes,
}

impl BodyReader {
    pub fn new(mut body: berth_client::BodyChunks) -> Self {
        let (tx, rx) = mpsc::channel(8);
        tokio::spawn(async move {
            loop {
                match body.next_chunk().await {
                    Ok(Some(c)) => {
                        if tx.send(Ok(c)).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => return,
                    Err(e) => {
                        let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                        return;
                    }
                }
            }
        });
        BodyReader {
            rx,
            cur: Bytes::new(),
        }
    }
}

impl std::io::Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if !self.cur.is_empty() {
                let n = self.cur.len().min(buf.len());
                buf[..n].copy_from_slice(&self.cur.split_to(n));
                return Ok(n);
            }
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
    }
}
