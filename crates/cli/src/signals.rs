//! SIGINT and SIGTERM while training: the first asks the epoch loop to stop
//! after the current step (the last good checkpoint, that of the last whole
//! epoch, is kept); a second one exits at once (every file is written
//! atomically, so that loses nothing either).

use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

/// Installs the handlers (once per process; later calls do nothing).
pub fn install() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            // The exit must be registered first: it runs only when an earlier
            // signal already set the flag. Failing to install is not fatal
            // (the default action, exiting, remains).
            let _ = signal_hook::flag::register_conditional_shutdown(signal, 130, &STOP);
            let _ = signal_hook::flag::register(signal, &STOP);
        }
    });
}

/// Whether a stop was asked for.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}
