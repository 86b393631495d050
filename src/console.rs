//! Printing that cannot crash the benchmark. `println!` panics when stdout is a closed
//! pipe (`servescope … | head -3`), which would lose results.json, the HTML and later
//! runs; these macros drop output the reader no longer takes, and everything else
//! finishes as if printing to a terminal. Every print in the crate goes through them.

use std::fmt::Arguments;
use std::io::Write;

/// Write to stdout, ignoring a closed pipe (or any other write error).
pub fn out(args: Arguments) {
    let _ = std::io::stdout().lock().write_fmt(args);
}

/// Write to stderr, ignoring a closed pipe.
pub fn err(args: Arguments) {
    let _ = std::io::stderr().lock().write_fmt(args);
}

/// `print!` that never panics.
macro_rules! out {
    ($($t:tt)*) => { $crate::console::out(format_args!($($t)*)) };
}

/// `println!` that never panics.
macro_rules! outln {
    () => { $crate::console::out(format_args!("\n")) };
    ($($t:tt)*) => { $crate::console::out(format_args!("{}\n", format_args!($($t)*))) };
}

/// `eprint!` that never panics.
#[allow(unused_macros)]
macro_rules! errout {
    ($($t:tt)*) => { $crate::console::err(format_args!($($t)*)) };
}

/// `eprintln!` that never panics.
macro_rules! errln {
    () => { $crate::console::err(format_args!("\n")) };
    ($($t:tt)*) => { $crate::console::err(format_args!("{}\n", format_args!($($t)*))) };
}

/// Flush stdout (stderr is unbuffered), ignoring errors.
pub fn flush() {
    let _ = std::io::stdout().lock().flush();
}
