//! The `facegate` binary: parses arguments, then hands over to [`facegate::cli`].

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    keep_freed_memory();
    let cli = facegate::cli::Cli::parse();
    // The service logs what it does (connections, changes from HA); one-shot commands only problems.
    let default = match cli.command {
        facegate::cli::Command::Run(_) => "info",
        _ => "warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("FACEGATE_LOG")
        // rumqttd (`facegate demo`'s embedded broker) logs every client that disconnects as an error.
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{default},rumqttd=off")));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match facegate::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// glibc hands large freed blocks (each layer's output) back to the OS and faults them in again on the next
/// frame: about a quarter of detection time in a profile. Keep them in the process instead; the working set is
/// a few tens of MB and is reused every frame.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    // SAFETY: mallopt only changes allocator tuning; called first thing, before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}
