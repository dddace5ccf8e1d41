//! `strata`: one binary for every server role and the user commands.

use std::process::ExitCode;

use clap::Parser;
use strata::report::{self, Failure};
use strata::{cli, commands, memory};

fn main() -> ExitCode {
    memory::limit_malloc_arenas();
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(usage) => {
            // clap prints `error: ...` with the usage line, or the help it was asked for.
            let _ = usage.print();
            return if usage.use_stderr() {
                ExitCode::from(Failure::Usage as u8)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let debug = report::debug_wanted(cli.debug);
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STRATA_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not in files or container logs.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(commands::run(cli)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => report::report(&err, debug),
    }
}
