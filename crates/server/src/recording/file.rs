//! The file under one track's WebM writer: buffered in memory between frames and
//! written out after each whole frame (`SharedFile::flush`), so that a crash or SIGKILL
//! leaves the file ending at a frame boundary, at most one frame behind.
//!
//! libwebm asks for the position after nearly every element it writes; `BufWriter`
//! would answer that with a flush (its `stream_position` seeks), one system call per
//! element, so the position is kept here.

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::rc::Rc;

#[derive(Debug)]
struct State {
    file: File,
    buf: Vec<u8>,
    /// Where the next byte goes (the file's position plus what is buffered).
    pos: u64,
    /// The first write error, kept so the recorder can tell a full disk from a bug
    /// (libwebm reports only "unknown error").
    error: Option<io::ErrorKind>,
}

/// A handle on one file: the writer holds one, the track another to flush and to read
/// the error. Single-threaded (the recorder's thread) by design.
#[derive(Clone, Debug)]
pub struct SharedFile(Rc<RefCell<State>>);

impl SharedFile {
    pub fn new(file: File) -> Self {
        SharedFile(Rc::new(RefCell::new(State {
            file,
            buf: Vec::with_capacity(64 * 1024),
            pos: 0,
            error: None,
        })))
    }

    /// The first write error seen, if any.
    pub fn error(&self) -> Option<io::ErrorKind> {
        self.0.borrow().error
    }

    fn fail<T>(s: &mut State, e: io::Error) -> io::Result<T> {
        s.error.get_or_insert(e.kind());
        Err(e)
    }

    fn write_out(s: &mut State) -> io::Result<()> {
        if s.buf.is_empty() {
            return Ok(());
        }
        let State { file, buf, .. } = s;
        match file.write_all(buf) {
            Ok(()) => {
                buf.clear();
                Ok(())
            }
            Err(e) => {
                // What was written stays written; the rest is dropped with the track.
                buf.clear();
                Self::fail(s, e)
            }
        }
    }
}

impl Write for SharedFile {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut s = self.0.borrow_mut();
        if let Some(kind) = s.error {
            return Err(kind.into());
        }
        s.buf.extend_from_slice(data);
        s.pos += data.len() as u64;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let mut s = self.0.borrow_mut();
        Self::write_out(&mut s)
    }
}

impl Seek for SharedFile {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let mut s = self.0.borrow_mut();
        if to == SeekFrom::Current(0) {
            return Ok(s.pos);
        }
        Self::write_out(&mut s)?;
        match s.file.seek(to) {
            Ok(p) => {
                s.pos = p;
                Ok(p)
            }
            Err(e) => Self::fail(&mut s, e),
        }
    }

    fn stream_position(&mut self) -> io::Result<u64> {
        Ok(self.0.borrow().pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffered_until_flushed_and_seeks_land_where_asked() {
        let dir = std::env::temp_dir().join(format!("rec-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("t.bin");
        let mut f = SharedFile::new(File::create(&path).expect("create"));
        f.write_all(b"hello world").expect("write");
        assert_eq!(f.stream_position().expect("pos"), 11);
        assert_eq!(std::fs::read(&path).expect("read").len(), 0, "buffered");
        f.flush().expect("flush");
        assert_eq!(std::fs::read(&path).expect("read"), b"hello world");
        f.seek(SeekFrom::Start(0)).expect("seek");
        f.write_all(b"J").expect("write");
        f.seek(SeekFrom::End(0)).expect("seek end");
        f.write_all(b"!").expect("write");
        f.flush().expect("flush");
        assert_eq!(std::fs::read(&path).expect("read"), b"Jello world!");
        std::fs::remove_dir_all(&dir).ok();
    }
}
