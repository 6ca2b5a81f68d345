//! The message of the last failed call, kept without heap allocation.
//!
//! With `std` each thread has its own message (a `thread_local`); without it there is
//! one static buffer, so a `no_std` build must call the API from one thread (or
//! serialize calls) to read a meaningful message. Only failing calls write a message;
//! successful calls leave it as it was.

use core::fmt::{self, Write};

/// Bytes kept of a message, its terminating NUL included. Longer messages are cut.
pub(crate) const MESSAGE_CAPACITY: usize = 256;

/// A NUL-terminated message in a fixed buffer.
pub struct Message {
    bytes: [u8; MESSAGE_CAPACITY],
    len: usize,
}

impl Message {
    const EMPTY: Message = Message {
        bytes: [0; MESSAGE_CAPACITY],
        len: 0,
    };

    /// Replaces the message with `args` (cut at a character boundary).
    fn set(&mut self, args: fmt::Arguments<'_>) {
        self.len = 0;
        // `write_str` below never fails: it cuts instead.
        let _ = self.write_fmt(args);
        self.bytes[self.len] = 0;
    }

    /// The message without its NUL.
    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl Write for Message {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = MESSAGE_CAPACITY - 1 - self.len;
        let mut take = s.len().min(room);
        while !s.is_char_boundary(take) {
            take -= 1;
        }
        self.bytes[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

#[cfg(feature = "std")]
std::thread_local! {
    static LAST: core::cell::RefCell<Message> = const { core::cell::RefCell::new(Message::EMPTY) };
}

/// The single message of a `no_std` build.
#[cfg(not(feature = "std"))]
struct Shared(core::cell::UnsafeCell<Message>);

// SAFETY: `no_std` builds are documented as single-threaded (README, header): the
// message is only touched by one call at a time.
#[cfg(not(feature = "std"))]
unsafe impl Sync for Shared {}

#[cfg(not(feature = "std"))]
static LAST: Shared = Shared(core::cell::UnsafeCell::new(Message::EMPTY));

/// Runs `f` on this thread's message (the static one without `std`).
fn with_message<R>(f: impl FnOnce(&mut Message) -> R) -> R {
    #[cfg(feature = "std")]
    {
        LAST.with(|m| f(&mut m.borrow_mut()))
    }
    #[cfg(not(feature = "std"))]
    {
        // SAFETY: single-threaded by the `no_std` contract (see `Shared`), and no
        // reference to the message outlives this call.
        f(unsafe { &mut *LAST.0.get() })
    }
}

/// Records `args` as the last error message.
pub fn set(args: fmt::Arguments<'_>) {
    with_message(|m| m.set(args));
}

/// Empties the last error message.
pub fn clear() {
    with_message(|m| m.set(format_args!("")));
}

/// A pointer to the NUL-terminated last message, valid until the next failing call
/// on this thread (the buffer itself lives as long as the thread, or forever).
pub fn as_ptr() -> *const core::ffi::c_char {
    with_message(|m| m.bytes.as_ptr().cast())
}

/// Copies the message, cut to fit, with its NUL into `out` (when not empty);
/// returns the message's full length without the NUL.
pub fn copy_to(out: &mut [u8]) -> usize {
    with_message(|m| {
        let text = m.as_bytes();
        if let Some(room) = out.len().checked_sub(1) {
            let take = text.len().min(room);
            out[..take].copy_from_slice(&text[..take]);
            out[take] = 0;
        }
        text.len()
    })
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        let long = "é".repeat(400);
        set(format_args!("{long}"));
        let mut out = [0u8; MESSAGE_CAPACITY + 8];
        let len = copy_to(&mut out);
        assert!(len < MESSAGE_CAPACITY);
        assert_eq!(len % 2, 0, "cut inside a character");
        assert_eq!(out[len], 0);
        assert!(std::str::from_utf8(&out[..len]).is_ok());
    }

    #[test]
    fn copies_are_cut_to_the_caller_buffer() {
        set(format_args!("arena too small: {}", 12));
        let mut small = [0xffu8; 6];
        assert_eq!(copy_to(&mut small), "arena too small: 12".len());
        assert_eq!(&small, b"arena\0");
        assert_eq!(copy_to(&mut []), "arena too small: 12".len());
    }
}
