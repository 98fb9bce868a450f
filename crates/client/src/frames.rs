//! Demuxer for Docker's multiplexed stdout/stderr stream format.
//!
//! Each frame is `[type, 0, 0, 0, len: u32 big-endian]` followed by `len` payload bytes.
//! Type 0 = stdin, 1 = stdout, 2 = stderr. Used by attach/logs when the container has no TTY.

use bytes::{Buf, Bytes, BytesMut};

/// Which stream a frame belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Stdin,
    Stdout,
    Stderr,
}

impl StreamKind {
    fn from_byte(b: u8) -> Option<Self> {
        match b {
            0 => Some(StreamKind::Stdin),
            1 => Some(StreamKind::Stdout),
            2 => Some(StreamKind::Stderr),
            _ => None,
        }
    }
}

/// One decoded frame (payloads may be split over several frames with the same kind).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: StreamKind,
    pub data: Bytes,
}

/// A malformed header (unknown stream type).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid stream frame header: unknown stream type {0}")]
pub struct FrameError(pub u8);

/// Push-based decoder: feed it bytes as they arrive, take complete frames out.
/// Large frames are delivered incrementally (a payload is emitted as soon as bytes of it
/// are available), so a slow writer's partial line still shows up promptly.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: BytesMut,
    /// Stream kind and remaining payload length of the frame being read.
    current: Option<(StreamKind, usize)>,
}

impl FrameDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add input bytes and return every frame (or frame piece) now complete.
    pub fn feed(&mut self, input: &[u8]) -> Result<Vec<Frame>, FrameError> {
        self.buf.extend_from_slice(input);
        let mut out = Vec::new();
        loop {
            match self.current {
                None => {
                    if self.buf.len() < 8 {
                        break;
                    }
                    let kind = StreamKind::from_byte(self.buf[0]).ok_or(FrameError(self.buf[0]))?;
                    let len =
                        u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]])
                            as usize;
                    self.buf.advance(8);
                    if len > 0 {
                        self.current = Some((kind, len));
                    }
                }
                Some((kind, remaining)) => {
                    if self.buf.is_empty() {
                        break;
                    }
                    let take = remaining.min(self.buf.len());
                    let data = self.buf.split_to(take).freeze();
                    out.push(Frame { kind, data });
                    self.current = if take == remaining {
                        None
                    } else {
                        Some((kind, remaining - take))
                    };
                }
            }
        }
        Ok(out)
    }

    /// True when no partial frame is pending (a clean end of stream).
    pub fn is_idle(&self) -> bool {
        self.current.is_none() && self.buf.is_empty()
    }
}

/// Encode one frame (used by tests and fake servers).
pub fn encode_frame(kind: StreamKind, payload: &[u8]) -> Vec<u8> {
    let t = match kind {
        StreamKind::Stdin => 0u8,
        StreamKind::Stdout => 1,
        StreamKind::Stderr => 2,
    };
    let mut v = Vec::with_capacity(8 + payload.len());
    v.extend_from_slice(&[t, 0, 0, 0]);
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(frames: Vec<Frame>) -> (Vec<u8>, Vec<u8>) {
        let (mut o, mut e) = (Vec::new(), Vec::new());
        for f in frames {
            match f.kind {
                StreamKind::Stdout => o.extend_from_slice(&f.data),
                StreamKind::Stderr => e.extend_from_slice(&f.data),
                StreamKind::Stdin => panic!("stdin frame"),
            }
        }
        (o, e)
    }

    #[test]
    fn decodes_captured_bytes() {
        // Bytes captured from dockerd in cli-endpoints.md 2.2.
        let mut input = Vec::new();
        input.extend(encode_frame(StreamKind::Stderr, b"err1\n"));
        input.extend(encode_frame(StreamKind::Stdout, b"out1\n"));
        input.extend(encode_frame(StreamKind::Stdout, b"out2\n"));
        assert_eq!(
            &input[..13],
            &[2, 0, 0, 0, 0, 0, 0, 5, b'e', b'r', b'r', b'1', b'\n']
        );
        let mut d = FrameDecoder::new();
        let frames = d.feed(&input).unwrap();
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0].kind, StreamKind::Stderr);
        let (o, e) = collect(frames);
        assert_eq!(o, b"out1\nout2\n");
        assert_eq!(e, b"err1\n");
        assert!(d.is_idle());
    }

    #[test]
    fn byte_at_a_time_split_headers_and_payloads() {
        let mut input = Vec::new();
        input.extend(encode_frame(StreamKind::Stdout, b"hello world"));
        input.extend(encode_frame(StreamKind::Stderr, b""));
        input.extend(encode_frame(StreamKind::Stderr, b"oops"));
        let mut d = FrameDecoder::new();
        let mut all = Vec::new();
        for b in &input {
            all.extend(d.feed(std::slice::from_ref(b)).unwrap());
            // header is incomplete in the middle: no frames must appear from a partial header
        }
        let (o, e) = collect(all);
        assert_eq!(o, b"hello world");
        assert_eq!(e, b"oops");
        assert!(d.is_idle());
    }

    #[test]
    fn partial_frame_is_not_idle() {
        let mut d = FrameDecoder::new();
        let f = encode_frame(StreamKind::Stdout, b"abcdef");
        let got = d.feed(&f[..10]).unwrap();
        assert_eq!(
            got,
            vec![Frame {
                kind: StreamKind::Stdout,
                data: Bytes::from_static(b"ab")
            }]
        );
        assert!(!d.is_idle());
        let got = d.feed(&f[10..]).unwrap();
        assert_eq!(got[0].data, Bytes::from_static(b"cdef"));
        assert!(d.is_idle());
    }

    #[test]
    fn large_length_uses_all_four_bytes() {
        let payload = vec![b'x'; 70_000];
        let f = encode_frame(StreamKind::Stdout, &payload);
        assert_eq!(&f[4..8], &[0, 1, 0x11, 0x70]);
        let mut d = FrameDecoder::new();
        let (o, _) = collect(d.feed(&f).unwrap());
        assert_eq!(o.len(), 70_000);
    }

    #[test]
    fn rejects_unknown_type() {
        let mut d = FrameDecoder::new();
        assert_eq!(d.feed(&[7, 0, 0, 0, 0, 0, 0, 1, b'a']), Err(FrameError(7)));
    }
}
