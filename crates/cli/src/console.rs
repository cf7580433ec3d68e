//! Printing that never stops the program: `println!` panics when stdout is
//! a closed pipe (`dae train | head -1`), which would end a run before it
//! saves. These write and ignore the error; the run goes on, silently.

use std::io::Write;

/// `println!` to stdout, ignoring a closed or failing stdout.
macro_rules! say {
    () => { $crate::console::out(format_args!("\n")) };
    ($($t:tt)*) => { $crate::console::out(format_args!("{}\n", format_args!($($t)*))) };
}

/// `print!` to stdout, ignoring a closed or failing stdout.
macro_rules! say_part {
    ($($t:tt)*) => { $crate::console::out(format_args!($($t)*)) };
}

/// `eprintln!` to stderr, ignoring a closed or failing stderr.
macro_rules! say_err {
    ($($t:tt)*) => { $crate::console::err(format_args!("{}\n", format_args!($($t)*))) };
}

pub fn out(args: std::fmt::Arguments) {
    let _ = std::io::stdout().lock().write_fmt(args);
}

pub fn err(args: std::fmt::Arguments) {
    let _ = std::io::stderr().lock().write_fmt(args);
}
