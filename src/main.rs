//! The `spikeword` command line: a thin layer over the library.

mod cli;

use std::process::ExitCode;

use clap::Parser;

// Training allocates and frees large tensors every step; glibc's malloc hands them back
// to the kernel each time (page faults were a fifth of training time), mimalloc keeps them.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    end_quietly_on_a_closed_pipe();
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            // One line for the cause chain: scripts and people read the same message.
            let msg = format!("{e:#}");
            eprintln!("error: {}", msg.replace('\n', " "));
            ExitCode::from(1)
        }
    }
}

/// Rust starts with SIGPIPE ignored, so a print after the reader left (`spikeword info | head`)
/// panics; the default action ends the program silently, as other Unix tools do.
#[cfg(unix)]
fn end_quietly_on_a_closed_pipe() {
    // SAFETY: the first call of main, before any other thread exists; SIG_DFL is always valid.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(not(unix))]
fn end_quietly_on_a_closed_pipe() {}
