//! `dubbo-wasm-host check --config F`: validates everything it can without serving.

use std::path::Path;
use std::process::ExitCode;

/// Checks the configuration at `path`, prints each problem with its field and a fix, and
/// returns the exit code (0 when nothing is wrong).
pub async fn run(path: &Path) -> ExitCode {
    match crate::config::Config::load(path) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
