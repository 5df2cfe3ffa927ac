//! The job's stdout and stderr when runonce has to sit in their path:
//! `--idle-timeout` (pass through, noting when output last came),
//! `--quiet` (hold it, replay it only if the run failed) and `--ping`
//! (pass through, keeping the last bytes for the ping).  Without these
//! options the job writes straight to runonce's own descriptors.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use crate::sys;

/// Held output stays in memory up to this size, then spills to a temp file.
const SPILL_AT: usize = 4 << 20;
/// Without a spill file (none could be made, or it filled up), the newest
/// output kept beside the oldest: the head and the tail of the output.
const TAIL_MAX: usize = 2 << 20;
/// Pass-through moves at most this much per write: a write of at most
/// PIPE_BUF to a pipe that polled writable never blocks runonce's loop.
const CHUNK: usize = 4096;
/// Bytes of a frame before its data: the stream and the length.
const FRAME_HEAD: usize = 5;

/// Output held for `--quiet`, in the order it was read, as frames of
/// (stream, length, bytes).  Memory stays bounded whatever happens to the
/// spill file: without one, the first `SPILL_AT` bytes and the last
/// `TAIL_MAX` are kept and what lies between is counted as lost.
#[derive(Default)]
pub struct Held {
    head: Vec<u8>,
    /// The spill file and how many bytes of whole frames it holds.
    file: Option<(File, u64)>,
    /// No (more) spilling: making or writing the file failed.
    no_spill: Option<String>,
    tail: std::collections::VecDeque<Vec<u8>>,
    tail_bytes: usize,
    /// Bytes of output dropped between the head and the tail.
    pub lost: u64,
}

impl Held {
    fn push(&mut self, fd: RawFd, data: &[u8]) {
        let mut frame = Vec::with_capacity(data.len() + FRAME_HEAD);
        frame.push(fd as u8);
        frame.extend_from_slice(&(data.len() as u32).to_le_bytes());
        frame.extend_from_slice(data);
        if self.file.is_none()
            && self.no_spill.is_none()
            && self.head.len() + frame.len() > SPILL_AT
        {
            self.spill();
        }
        if let Some((f, len)) = self.file.as_mut().filter(|_| self.no_spill.is_none()) {
            match f.write_all(&frame) {
                Ok(()) => {
                    *len += frame.len() as u64;
                    return;
                }
                Err(e) => {
                    // a torn frame at the end is cut off at replay (`len`)
                    self.no_spill = Some(format!("spill file: {e}"));
                }
            }
        }
        // once output went to the tail, all later output must, to keep order
        let fits = self.file.is_none() && self.head.len() + frame.len() <= SPILL_AT;
        if self.tail_bytes == 0 && self.lost == 0 && (self.no_spill.is_none() || fits) {
            self.head.extend_from_slice(&frame);
            return;
        }
        self.tail_bytes += frame.len();
        self.tail.push_back(frame);
        while self.tail_bytes > TAIL_MAX {
            let Some(old) = self.tail.pop_front() else { break };
            self.tail_bytes -= old.len();
            self.lost += (old.len() - FRAME_HEAD) as u64;
        }
    }

    /// Moves the head into a new spill file, or notes why there is none.
    fn spill(&mut self) {
        let made = spill_file().and_then(|mut f| {
            f.write_all(&self.head)?;
            Ok(f)
        });
        match made {
            Ok(f) => {
                self.file = Some((f, self.head.len() as u64));
                self.head = Vec::new();
            }
            Err(e) => {
                self.no_spill =
                    Some(format!("no spill file in {}: {e}", std::env::temp_dir().display()))
            }
        }
    }

    /// Writes everything kept back, stdout to fd 1 and stderr to fd 2, in
    /// the order it was read, with a line on stderr where output was lost.
    /// Write errors are ignored (a closed stdout must not change the job's
    /// exit status).
    pub fn replay(mut self) {
        if let Some((mut f, len)) = self.file.take()
            && f.rewind().is_ok()
        {
            replay_frames(&mut BufReader::new(f).take(len));
        }
        replay_frames(&mut self.head.as_slice());
        if self.lost > 0 {
            let why = self.no_spill.as_deref().unwrap_or("spill file unusable");
            crate::ui::warn(&format!(
                "{} bytes of the job's output were not kept ({why}): the rest follows",
                self.lost
            ));
        }
        for frame in self.tail {
            replay_frames(&mut frame.as_slice());
        }
    }
}

fn replay_frames(r: &mut impl Read) {
    let mut head = [0u8; FRAME_HEAD];
    let mut data = Vec::new();
    while r.read_exact(&mut head).is_ok() {
        let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize;
        data.resize(len, 0);
        if r.read_exact(&mut data).is_err() {
            return;
        }
        let _ = sys::write_all_fd(RawFd::from(head[0]), &data);
    }
}

/// An unnamed temp file (O_TMPFILE), falling back to an exclusive file
/// under a random name, unlinked at once.
fn spill_file() -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = std::env::temp_dir();
    let named = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_TMPFILE)
        .open(&dir);
    if named.is_ok() {
        return named;
    }
    let path = dir.join(format!("runonce-held.{:016x}", crate::files::random_u64()));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(f)
}

/// One of the job's output streams, read by runonce.
pub struct Stream {
    src: Option<OwnedFd>,
    /// runonce's own fd (1 or 2) this stream belongs to.
    pub dst: RawFd,
    pending: Vec<u8>,
    dst_broken: bool,
    pub lost: u64,
}

impl Stream {
    pub fn new(src: OwnedFd, dst: RawFd) -> io::Result<Stream> {
        sys::set_nonblocking(&src)?;
        Ok(Stream { src: Some(src), dst, pending: Vec::new(), dst_broken: false, lost: 0 })
    }

    pub fn is_open(&self) -> bool {
        self.src.is_some()
    }

    /// Stop reading (the job is gone and something else holds the pipe).
    pub fn close(&mut self) {
        self.src = None;
    }

    /// The poll entries this stream wants: its pipe when it can take more
    /// data, runonce's fd when data waits to go out.
    pub fn poll_entries(&self, passthrough: bool) -> [Option<libc::pollfd>; 2] {
        let read = self
            .src
            .as_ref()
            .filter(|_| !passthrough || self.pending.is_empty())
            .map(|s| sys::pollfd(s.as_raw_fd(), libc::POLLIN));
        let write =
            (passthrough && !self.pending.is_empty()).then(|| sys::pollfd(self.dst, libc::POLLOUT));
        [read, write]
    }

    /// Reads what the pipe has, also into `tail` if given.  Returns the
    /// number of bytes read (0 at EOF, which closes the stream).
    // Not inlined: its 64 KiB buffer in the supervisor's frame made every
    // run fault in 16 stack pages (the stack probe touches each), output
    // captured or not.
    #[inline(never)]
    pub fn read(&mut self, held: Option<&mut Held>, tail: Option<&mut Tail>) -> usize {
        let Some(src) = &self.src else { return 0 };
        let mut buf = [0u8; 65536];
        let cap = if held.is_some() { buf.len() } else { CHUNK };
        match sys::read_fd(src.as_raw_fd(), &mut buf[..cap]) {
            Ok(0) => {
                self.src = None;
                0
            }
            Ok(n) => {
                if let Some(t) = tail {
                    t.push(&buf[..n]);
                }
                match held {
                    Some(h) => h.push(self.dst, &buf[..n]),
                    None if self.dst_broken => self.lost += n as u64,
                    None => self.pending.extend_from_slice(&buf[..n]),
                }
                n
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(_) => {
                self.src = None;
                0
            }
        }
    }

    /// Writes pending pass-through data to runonce's fd.  A closed or full
    /// destination drops the data (counted) instead of stalling the job.
    pub fn write(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        match sys::write_fd(self.dst, &self.pending) {
            Ok(n) => {
                self.pending.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => {
                self.lost += self.pending.len() as u64;
                self.pending.clear();
                self.dst_broken = true;
            }
        }
    }

    /// Pushes out whatever is pending at the end (blocking is fine now).
    pub fn flush(&mut self) {
        if !self.pending.is_empty() && !self.dst_broken {
            if sys::write_all_fd(self.dst, &self.pending).is_err() {
                self.lost += self.pending.len() as u64;
            }
            self.pending.clear();
        }
    }
}

/// The last bytes of the job's output, stdout and stderr in the order they
/// were read: what `--ping` sends with the finish ping.
#[derive(Debug)]
pub struct Tail {
    bytes: std::collections::VecDeque<u8>,
    max: usize,
}

impl Tail {
    pub fn new(max: usize) -> Tail {
        Tail { bytes: std::collections::VecDeque::with_capacity(max), max }
    }

    pub fn push(&mut self, data: &[u8]) {
        let data = &data[data.len().saturating_sub(self.max)..];
        let excess = (self.bytes.len() + data.len()).saturating_sub(self.max);
        self.bytes.drain(..excess);
        self.bytes.extend(data);
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_frames_keep_order_across_spill() {
        let mut h = Held::default();
        let big = vec![b'x'; SPILL_AT / 2 + 1];
        h.push(1, b"a");
        h.push(2, &big);
        h.push(1, &big);
        assert!(h.file.is_some());
        h.push(2, b"z");
        let (mut f, len) = h.file.take().unwrap();
        f.rewind().unwrap();
        let mut all = Vec::new();
        f.read_to_end(&mut all).unwrap();
        assert_eq!(all.len() as u64, len);
        all.extend_from_slice(&h.head);
        assert_eq!(all[0], 1);
        assert_eq!(&all[5..6], b"a");
        assert_eq!(*all.last().unwrap(), b'z');
        assert_eq!(all.len(), 4 * 5 + 2 + 2 * big.len());
    }

    #[test]
    fn tail_keeps_the_last_bytes() {
        let mut t = Tail::new(4);
        t.push(b"ab");
        t.push(b"cde");
        assert_eq!(t.into_bytes(), b"bcde");
        let mut t = Tail::new(4);
        t.push(b"0123456789");
        t.push(b"");
        assert_eq!(t.into_bytes(), b"6789");
    }

    #[test]
    fn without_a_spill_file_memory_is_bounded() {
        let mut h = Held { no_spill: Some("test".into()), ..Held::default() };
        let chunk = vec![b'y'; 65536];
        h.push(1, b"first");
        for _ in 0..200 {
            h.push(2, &chunk);
        }
        h.push(1, b"last");
        assert!(h.head.len() <= SPILL_AT && h.tail_bytes <= TAIL_MAX, "bounded");
        assert!(h.lost > 0);
        assert!(&h.head[5..10] == b"first");
        assert!(&h.tail.back().unwrap()[5..] == b"last", "the newest output is kept");
        let kept = (h.head.len() + h.tail_bytes) as u64 - kept_frames(&h);
        assert_eq!(kept + h.lost, 5 + 200 * 65536 + 4, "every byte kept or counted");
    }

    fn kept_frames(h: &Held) -> u64 {
        let mut n = h.tail.len() as u64;
        let mut r = h.head.as_slice();
        while r.len() >= FRAME_HEAD {
            let len = u32::from_le_bytes([r[1], r[2], r[3], r[4]]) as usize;
            r = &r[FRAME_HEAD + len..];
            n += 1;
        }
        n * FRAME_HEAD as u64
    }
}
