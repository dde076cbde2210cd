//! The original image as the worker hands it to a child: a memory file
//! rather than a buffer or a pipe, so the download is written once and the
//! child reads it in one call.

use std::fs::File;
use std::io::{BufReader, Seek, Write};

use nix::sys::memfd::{MFdFlags, memfd_create};

/// An original image held for the engine: a memory file (`memfd`) written
/// as its download arrives, which becomes its child's stdin. The child reads
/// it in one call, as `apply` reads a file, where a pipe would take the
/// image in turns of 64 KiB, each a wake-up of both processes.
#[derive(Debug)]
pub struct Original {
    file: File,
    len: u64,
}

impl Original {
    /// An empty original, to [`write`](Self::write) into.
    pub fn new() -> std::io::Result<Self> {
        let fd = memfd_create("darkroom-original", MFdFlags::MFD_CLOEXEC)?;
        Ok(Self {
            file: File::from(fd),
            len: 0,
        })
    }

    /// An original holding `bytes`.
    pub fn from_bytes(bytes: &[u8]) -> std::io::Result<Self> {
        let mut original = Self::new()?;
        original.write(bytes)?;
        Ok(original)
    }

    /// Appends `chunk`. A plain write: the file is memory, so this is a copy
    /// that never waits on a device.
    pub fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        self.file.write_all(chunk)?;
        self.len += chunk.len() as u64;
        Ok(())
    }

    /// Size in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The image from its start, for reading headers.
    pub fn reader(&self) -> std::io::Result<BufReader<&File>> {
        Ok(BufReader::new(self.rewound()?))
    }

    /// The file, its offset at the start. The offset is shared by every
    /// handle on the file, the child's stdin included.
    pub(super) fn rewound(&self) -> std::io::Result<&File> {
        let mut file = &self.file;
        file.rewind()?;
        Ok(file)
    }
}
