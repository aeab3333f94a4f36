//! `sendfile(2)` from a segment file to a non-blocking tokio socket: record bytes go from
//! the page cache to the socket without passing through user space.

use std::fs::File;
use std::io;
use std::os::unix::io::AsRawFd;

use tokio::io::Interest;
use tokio::net::TcpStream;

/// Sends `len` bytes of `file` starting at `offset`, waiting for the socket to become
/// writable as needed. A file that ends early is an error: the caller promised the bytes.
#[allow(unsafe_code)] // audited: see the SAFETY notes below
pub(crate) async fn sendfile_all(
    stream: &TcpStream,
    file: &File,
    mut offset: u64,
    mut len: u64,
) -> io::Result<()> {
    while len > 0 {
        stream.writable().await?;
        let result = stream.try_io(Interest::WRITABLE, || {
            let mut off = offset as libc::off_t;
            let chunk = len.min(1 << 30) as usize;
            // SAFETY: both descriptors are open for the duration of the call (we hold
            // references to their owners) and `off` is a valid pointer.
            let n =
                unsafe { libc::sendfile(stream.as_raw_fd(), file.as_raw_fd(), &mut off, chunk) };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n as u64)
            }
        });
        match result {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "segment file ended before the promised records",
                ));
            }
            Ok(n) => {
                offset += n;
                len -= n;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
