//! Request bodies (empty, whole, streamed from a reader) and response body readers
//! (raw chunks, JSON lines).

use crate::error::{Error, Result};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use serde_json::Value;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};

const READ_CHUNK: usize = 64 * 1024;

/// A request body.
pub enum ReqBody {
    /// No body.
    Empty,
    /// A complete body (sent with Content-Length).
    Full(Option<Bytes>),
    /// A body streamed from a reader (sent with `Transfer-Encoding: chunked`). The flag
    /// ends the body early when the daemon stopped reading it (it already answered).
    Reader(Box<dyn AsyncRead + Send + Unpin>, Arc<AtomicBool>),
}

impl std::fmt::Debug for ReqBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReqBody::Empty => f.write_str("Empty"),
            ReqBody::Full(b) => write!(f, "Full({:?} bytes)", b.as_ref().map(|b| b.len())),
            ReqBody::Reader(..) => f.write_str("Reader"),
        }
    }
}

impl ReqBody {
    pub fn empty() -> Self {
        ReqBody::Empty
    }
    pub fn full(data: impl Into<Bytes>) -> Self {
        ReqBody::Full(Some(data.into()))
    }
    pub fn from_reader<R: AsyncRead + Send + Unpin + 'static>(r: R) -> Self {
        ReqBody::Reader(Box::new(r), Arc::new(AtomicBool::new(false)))
    }
    /// The "peer stopped reading" flag of a streamed body.
    pub(crate) fn abort_flag(&self) -> Option<Arc<AtomicBool>> {
        match self {
            ReqBody::Reader(_, f) => Some(f.clone()),
            _ => None,
        }
    }
    pub(crate) fn is_empty_known(&self) -> bool {
        matches!(self, ReqBody::Empty)
    }
}

impl Body for ReqBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match self.get_mut() {
            ReqBody::Empty => Poll::Ready(None),
            ReqBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            ReqBody::Reader(r, aborted) => {
                if aborted.load(Ordering::SeqCst) {
                    return Poll::Ready(None);
                }
                let mut buf = vec![0u8; READ_CHUNK];
                let mut rb = ReadBuf::new(&mut buf);
                match Pin::new(r).poll_read(cx, &mut rb) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
                    Poll::Ready(Ok(())) => {
                        let n = rb.filled().len();
                        if n == 0 {
                            Poll::Ready(None)
                        } else {
                            buf.truncate(n);
                            Poll::Ready(Some(Ok(Frame::data(Bytes::from(buf)))))
                        }
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ReqBody::Empty => true,
            ReqBody::Full(b) => b.is_none(),
            ReqBody::Reader(..) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ReqBody::Empty => SizeHint::with_exact(0),
            ReqBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            ReqBody::Full(None) => SizeHint::with_exact(0),
            ReqBody::Reader(..) => SizeHint::default(),
        }
    }
}

/// Raw data chunks of a (possibly endless) response body, e.g. logs.
pub struct BodyChunks {
    body: Incoming,
}

impl BodyChunks {
    pub fn new(body: Incoming) -> Self {
        BodyChunks { body }
    }

    /// Next data chunk; `None` at the end of the body.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>> {
        loop {
            match self.body.frame().await {
                None => return Ok(None),
                Some(Err(e)) => return Err(Error::http("reading response body", e)),
                Some(Ok(f)) => {
                    if let Ok(d) = f.into_data() {
                        if !d.is_empty() {
                            return Ok(Some(d));
                        }
                    }
                }
            }
        }
    }
}

/// A JSON-lines (one object per `\n`) response stream: pull/import progress, wait, events.
pub struct JsonLines {
    chunks: BodyChunks,
    buf: BytesMut,
    done: bool,
}

impl JsonLines {
    pub fn new(body: Incoming) -> Self {
        JsonLines {
            chunks: BodyChunks::new(body),
            buf: BytesMut::new(),
            done: false,
        }
    }

    /// Next JSON value, without interpreting `error` fields.
    pub async fn next_raw(&mut self) -> Result<Option<Value>> {
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let line = self.buf.split_to(pos + 1);
                let line = trim_ascii(&line);
                if line.is_empty() {
                    continue;
                }
                return parse_line(line).map(Some);
            }
            if self.done {
                let rest = self.buf.split();
                let rest = trim_ascii(&rest);
                if rest.is_empty() {
                    return Ok(None);
                }
                return parse_line(rest).map(Some);
            }
            match self.chunks.next_chunk().await? {
                Some(c) => self.buf.extend_from_slice(&c),
                None => self.done = true,
            }
        }
    }

    /// Next JSON value; an in-stream `{"error":..., "errorDetail":{...}}` becomes
    /// `Error::Stream` (with `errorDetail.code` when present).
    pub async fn next(&mut self) -> Result<Option<Value>> {
        let Some(v) = self.next_raw().await? else {
            return Ok(None);
        };
        if let Some(err) = v.get("error").filter(|e| !e.is_null()) {
            let message = err
                .as_str()
                .map(str::to_string)
                .or_else(|| {
                    v.pointer("/errorDetail/message")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .unwrap_or_else(|| err.to_string());
            let code = v.pointer("/errorDetail/code").and_then(Value::as_i64);
            return Err(Error::Stream { message, code });
        }
        Ok(Some(v))
    }
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end]
}

fn parse_line(line: &[u8]) -> Result<Value> {
    serde_json::from_slice(line).map_err(|source| Error::Decode {
        context: format!("stream line {:?}", String::from_utf8_lossy(line)),
        source,
    })
}

/// Socket wrapper for uploads: when the daemon answers early (an error) and closes without
/// reading the rest of the body, writes fail with EPIPE before hyper has read the reply. This
/// swallows that failure (discarding further output and ending the body) so the daemon's
/// actual answer is what the caller sees, as with the Go client.
pub(crate) struct EarlyReplyIo<T> {
    pub(crate) inner: T,
    pub(crate) broken: Arc<AtomicBool>,
    /// Only streamed uploads swallow EPIPE; other requests keep their write errors.
    pub(crate) swallow: bool,
}

fn is_peer_gone(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
    )
}

impl<T: AsyncRead + Unpin> AsyncRead for EarlyReplyIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for EarlyReplyIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if this.broken.load(Ordering::SeqCst) {
            return Poll::Ready(Ok(buf.len()));
        }
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(Err(e)) if this.swallow && is_peer_gone(&e) => {
                this.broken.store(true, Ordering::SeqCst);
                Poll::Ready(Ok(buf.len()))
            }
            other => other,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.broken.load(Ordering::SeqCst) {
            return Poll::Ready(Ok(()));
        }
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Ready(Err(e)) if this.swallow && is_peer_gone(&e) => {
                this.broken.store(true, Ordering::SeqCst);
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.broken.load(Ordering::SeqCst) {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}
