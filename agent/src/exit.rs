//! Exit codes, so that a supervisor can tell a bad configuration (restarting will not help)
//! from a failure at run time (restarting may):
//!
//! | code | meaning | examples |
//! | --- | --- | --- |
//! | 0 | success; `apitap check`: capture works here | SIGTERM handled, replay done |
//! | 1 | failure at run time; `apitap check`: capture cannot work here | BPF load refused, port in use, Redis lock, disk full |
//! | 78 | configuration or usage error (EX_CONFIG, sysexits.h) | unknown flag or key, invalid value, unreadable TLS file, unknown interface, missing capabilities |
//!
//! The systemd unit sets `RestartPreventExitStatus=78`: a bad config stops the service with one
//! clear log line instead of a restart every few seconds.

use std::process::ExitCode;

/// Success.
pub const OK: u8 = 0;
/// A failure at run time.
pub const FAILURE: u8 = 1;
/// A configuration or usage error (EX_CONFIG).
pub const CONFIG: u8 = 78;

/// An error the user fixes in the command line, the environment or the config file.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// An [`anyhow::Error`] that exits 78.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

/// Whether `err` (or anything it wraps) is a configuration or usage error.
pub fn is_config_error(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.is::<UsageError>()
            || e.is::<crate::config::ConfigError>()
            || e.is::<crate::tls::TlsError>()
            // Notifiers are built at start from the config only (addresses, URLs, TLS files).
            || e.is::<crate::alert::AlertError>()
            || matches!(
                e.downcast_ref::<crate::store::StoreError>(),
                Some(crate::store::StoreError::InvalidUrl(_))
            )
    })
}

/// The exit code of a command that failed with `err`.
pub fn code_of(err: &anyhow::Error) -> u8 {
    if is_config_error(err) {
        CONFIG
    } else {
        FAILURE
    }
}

/// The exit code of a command line clap refused: 0 for --help and --version, 78 otherwise.
pub fn code_of_clap(err: &clap::Error) -> u8 {
    use clap::error::ErrorKind::{DisplayHelp, DisplayVersion};
    match err.kind() {
        DisplayHelp | DisplayVersion => OK,
        _ => CONFIG,
    }
}

/// A clap usage error on one line: its first line without the `error: ` prefix, plus where
/// to look (clap's tips and usage block are left out).
pub fn clap_line(err: &clap::Error) -> String {
    use clap::error::ErrorKind::{DisplayHelpOnMissingArgumentOrSubcommand, MissingSubcommand};
    if matches!(
        err.kind(),
        DisplayHelpOnMissingArgumentOrSubcommand | MissingSubcommand
    ) {
        return "a subcommand is required: run, replay, check or top (see apitap --help)".into();
    }
    let text = err.render().to_string();
    let first = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid command line");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    format!("{first} (see apitap --help)")
}

/// `code` as an [`ExitCode`].
pub fn exit_code(code: u8) -> ExitCode {
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_errors_are_found_under_context() {
        let e = usage("unknown interface eth9").context("cannot start");
        assert_eq!(code_of(&e), CONFIG);
        let e = anyhow::Error::from(crate::store::StoreError::InvalidUrl("x".into()))
            .context("cannot open the usage store");
        assert_eq!(code_of(&e), CONFIG);
        let e = anyhow::Error::from(crate::store::StoreError::Redis("down".into()));
        assert_eq!(code_of(&e), FAILURE);
        let e = anyhow::anyhow!("the kernel rejected program tc_ingress");
        assert_eq!(code_of(&e), FAILURE);
    }
}
