//! The shim control protocol (docs/DESIGN.md, "Shim"): frames `[type: u8][len: u32 BE][payload]`.

use serde::{Deserialize, Serialize};

/// shim -> client: stdout bytes.
pub const STDOUT: u8 = 1;
/// shim -> client: stderr bytes.
pub const STDERR: u8 = 2;
/// shim -> client: exit status JSON ([`ExitStatus`]); the connection is closed after it.
pub const EXIT: u8 = 3;
/// shim -> client: started, JSON `{"Pid":N}`.
pub const STARTED: u8 = 4;
/// shim -> client: start failed, UTF-8 error text.
pub const FAILED: u8 = 5;
/// client -> shim: start the container.
pub const START: u8 = 10;
/// client -> shim: stdin bytes.
pub const STDIN: u8 = 11;
/// client -> shim: close stdin.
pub const CLOSE_STDIN: u8 = 12;
/// client -> shim: resize, JSON `{"h":N,"w":N}`.
pub const RESIZE: u8 = 13;

/// Largest frame the shim accepts from a client.
pub const MAX_FRAME: usize = 16 << 20;

/// The exit file contents and the payload of frame 3.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitStatus {
    #[serde(rename = "ExitCode")]
    pub exit_code: i32,
    #[serde(rename = "FinishedAt")]
    pub finished_at: String,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
}

/// Payload of frame 4.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Started {
    #[serde(rename = "Pid")]
    pub pid: i32,
}

/// Payload of frame 13.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resize {
    pub h: u16,
    pub w: u16,
}

/// Appends one encoded frame to `out`.
pub fn encode_into(out: &mut Vec<u8>, kind: u8, payload: &[u8]) {
    out.reserve(5 + payload.len());
    out.push(kind);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
}

/// One encoded frame.
pub fn encode(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    encode_into(&mut v, kind, payload);
    v
}

/// A frame whose declared length exceeds [`MAX_FRAME`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("frame of type {kind} too large: {len} bytes")]
pub struct FrameTooLarge {
    pub kind: u8,
    pub len: usize,
}

/// Incremental frame decoder over a byte stream.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes buffered but not yet decoded.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// The next complete frame, if one is buffered.
    pub fn next_frame(&mut self) -> Result<Option<(u8, Vec<u8>)>, FrameTooLarge> {
        if self.buf.len() < 5 {
            return Ok(None);
        }
        let kind = self.buf[0];
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        if len > MAX_FRAME {
            return Err(FrameTooLarge { kind, len });
        }
        if self.buf.len() < 5 + len {
            return Ok(None);
        }
        let payload = self.buf[5..5 + len].to_vec();
        self.buf.drain(..5 + len);
        Ok(Some((kind, payload)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_split_and_joined() {
        let mut bytes = encode(STDOUT, b"hello");
        encode_into(&mut bytes, EXIT, b"");
        encode_into(&mut bytes, STDERR, &[0xff; 300]);
        let mut d = Decoder::new();
        let mut got = Vec::new();
        for b in &bytes {
            d.push(std::slice::from_ref(b));
            while let Some(f) = d.next_frame().unwrap() {
                got.push(f);
            }
        }
        assert_eq!(
            got,
            vec![(1, b"hello".to_vec()), (3, vec![]), (2, vec![0xff; 300])]
        );
        assert_eq!(d.pending(), 0);
    }

    #[test]
    fn rejects_huge_frame() {
        let mut d = Decoder::new();
        d.push(&[11, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(
            d.next_frame(),
            Err(FrameTooLarge {
                kind: 11,
                len: 0xffff_ffff
            })
        );
    }

    #[test]
    fn exit_status_json_shape() {
        let s = ExitStatus {
            exit_code: 3,
            finished_at: "x".into(),
            oom_killed: false,
        };
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"ExitCode":3,"FinishedAt":"x","OOMKilled":false}"#
        );
    }
}
