//! Reading the kernel's event ring buffer.

use std::os::fd::{AsRawFd, RawFd};

use aya::maps::{MapData, RingBuf};
pub use stockade_bpf_common::events::Event;

/// The ring buffer of [`Event`]s. Poll its file descriptor for readability
/// (e.g. with tokio's `AsyncFd`), then drain it with [`EventReader::drain`].
pub struct EventReader {
    ring: RingBuf<MapData>,
    malformed: u64,
}

impl EventReader {
    pub(crate) fn new(ring: RingBuf<MapData>) -> Self {
        EventReader { ring, malformed: 0 }
    }

    /// Hands every event waiting in the buffer to `sink`; returns how many.
    pub fn drain(&mut self, mut sink: impl FnMut(Event)) -> usize {
        let mut count = 0;
        while let Some(item) = self.ring.next() {
            match decode(&item) {
                Some(event) => {
                    sink(event);
                    count += 1;
                }
                None => self.malformed += 1,
            }
        }
        count
    }

    /// Records that were too short to be an event (none, unless the kernel
    /// object and this loader disagree).
    pub fn malformed(&self) -> u64 {
        self.malformed
    }
}

impl AsRawFd for EventReader {
    fn as_raw_fd(&self) -> RawFd {
        self.ring.as_raw_fd()
    }
}

/// An event from the bytes of one ring-buffer record.
pub fn decode(bytes: &[u8]) -> Option<Event> {
    if bytes.len() < std::mem::size_of::<Event>() {
        return None;
    }
    // SAFETY: the length was checked; Event is plain old data (every bit
    // pattern is valid) and read_unaligned needs no alignment.
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<Event>()) })
}
