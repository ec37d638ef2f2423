//! `dubbo-wasm-host check --config F`: validates everything it can without serving — the
//! config's fields, each guest's file, its compilation and the binding of its imports to its
//! granted references, the registries' reachability and the listen addresses — and prints every
//! problem with the field it concerns and a fix.
//!
//! Nothing is registered and no provider is called: guests are bound against placeholder
//! references that never connect (binding reads only a reference's interface, WIT name, method
//! settings and Java types), and a registry is only opened as a ZooKeeper session and closed.
//! Compiling goes through the engine's on-disk cache, so a `serve` after a `check` starts fast.

mod guests;
mod network;

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use crate::config::{Config, ConfigError};

use self::guests::check_guests;
use self::network::{check_listeners, start_provider_checks, start_registry_checks};

/// Checks the configuration at `path`, prints each problem with its field and a fix, and
/// returns the exit code (0 when nothing is wrong).
pub async fn run(path: &Path) -> ExitCode {
    let mut report = Report::new(path);
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            report.add(Finding::Error(config_problem(e)));
            return report.finish();
        }
    };
    report.add(Finding::Ok(format!(
        "config {} is valid: {}, {}, {}",
        path.display(),
        count(config.references.len(), "reference", "references"),
        count(config.guests.len(), "guest", "guests"),
        count(config.registries.len(), "registry", "registries")
    )));
    // The network probes run while the guests compile; their findings are printed after.
    let registries = start_registry_checks(&config);
    let providers = start_provider_checks(&config);
    check_guests(&config, &mut report).await;
    for pending in registries.into_iter().chain(providers) {
        report.add(pending.finding().await);
    }
    for finding in check_listeners(&config).await {
        report.add(finding);
    }
    report.finish()
}

/// `1 guest`, `2 guests`.
fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `reference `a` needs`, `references `a`, `b` need`.
fn who_needs(ids: &[String]) -> String {
    match ids {
        [one] => format!("reference {one} needs"),
        many => format!("references {} need", many.join(", ")),
    }
}

/// What one check found.
enum Finding {
    Ok(String),
    Warning(Problem),
    Error(Problem),
}

/// Something wrong with one field of the config, worded for the person who wrote it.
struct Problem {
    /// `guest[0].path`, or empty when the problem is the file as a whole.
    field: String,
    problem: String,
    fix: String,
}

impl Problem {
    fn new(field: impl Into<String>, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Problem {
            field: field.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

/// Prints findings as they come (passed checks on stdout, problems on stderr) and counts them.
struct Report {
    file: String,
    errors: usize,
    warnings: usize,
}

impl Report {
    fn new(path: &Path) -> Report {
        Report {
            file: path.display().to_string(),
            errors: 0,
            warnings: 0,
        }
    }

    fn add(&mut self, finding: Finding) {
        // A closed pipe (`| head`) must not turn into a panic.
        match finding {
            Finding::Ok(line) => {
                let _ = writeln!(std::io::stdout().lock(), "ok: {line}");
            }
            Finding::Warning(p) => {
                self.warnings += 1;
                self.print("warning", &p);
            }
            Finding::Error(p) => {
                self.errors += 1;
                self.print("error", &p);
            }
        }
    }

    fn print(&self, label: &str, p: &Problem) {
        let at = if p.field.is_empty() {
            String::new()
        } else {
            format!(" {}:", p.field)
        };
        let _ = writeln!(
            std::io::stderr().lock(),
            "{label}: {}:{at} {}\n  fix: {}",
            self.file,
            p.problem,
            p.fix
        );
    }

    fn finish(self) -> ExitCode {
        let warnings = match self.warnings {
            0 => String::new(),
            1 => " (1 warning)".to_string(),
            n => format!(" ({n} warnings)"),
        };
        if self.errors == 0 {
            let _ = writeln!(std::io::stdout().lock(), "config OK{warnings}");
            ExitCode::SUCCESS
        } else {
            let _ = writeln!(
                std::io::stderr().lock(),
                "{} problem(s) found{warnings}",
                self.errors
            );
            ExitCode::FAILURE
        }
    }
}

/// A check running in the background, or its finding when there was nothing to wait for.
enum Pending {
    Ready(Finding),
    Running {
        task: tokio::task::JoinHandle<Finding>,
        field: String,
    },
}

impl Pending {
    async fn finding(self) -> Finding {
        match self {
            Pending::Ready(f) => f,
            Pending::Running { task, field } => task.await.unwrap_or_else(|e| {
                Finding::Error(Problem::new(
                    field,
                    format!("the check itself failed: {e}"),
                    "report this as a bug in dubbo-wasm-host",
                ))
            }),
        }
    }
}

/// A config that cannot be loaded, as a problem with the field it names when it names one.
fn config_problem(e: ConfigError) -> Problem {
    match e {
        ConfigError::Invalid {
            field,
            problem,
            fix,
            ..
        } => Problem::new(field, problem, fix),
        ConfigError::Read { source, .. } => Problem::new(
            "",
            format!("cannot read the file: {source}"),
            "pass an existing file with --config",
        ),
        ConfigError::Parse {
            field,
            line,
            problem,
            fix,
            ..
        } => {
            let problem = match line {
                Some(line) => format!("{problem} (line {line})"),
                None => format!("is not valid: {problem}"),
            };
            Problem::new(field.unwrap_or_default(), problem, fix)
        }
    }
}
