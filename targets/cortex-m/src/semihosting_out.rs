//! Output and exit through Arm semihosting (QEMU `-semihosting-config enable=on`).
//!
//! This is the only module that talks to the debug host; a hardware port replaces it
//! with a UART writer implementing [`core::fmt::Write`] and its own way to stop.

use core::fmt;
use cortex_m_semihosting::{debug, hio};

/// The host's standard output, as a [`fmt::Write`].
pub struct SemihostingWriter {
    stream: hio::HostStream,
}

impl SemihostingWriter {
    /// Opens the host's standard output (`None` if the host refuses).
    pub fn stdout() -> Option<SemihostingWriter> {
        hio::hstdout()
            .ok()
            .map(|stream| SemihostingWriter { stream })
    }
}

impl fmt::Write for SemihostingWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.stream.write_all(s.as_bytes()).map_err(|()| fmt::Error)
    }
}

/// Ends the program: QEMU exits with status 0 if `success`, 1 otherwise.
pub fn exit(success: bool) -> ! {
    debug::exit(if success {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    // Without a semihosting host the call above returns: stop here.
    loop {
        cortex_m::asm::wfi();
    }
}
