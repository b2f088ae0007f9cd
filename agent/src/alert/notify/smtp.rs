//! `[alerts.smtp]`: one plain-text mail per notification to every recipient.
//!
//! Plain SMTP (no STARTTLS in this build). The password is read from the config file or the
//! APITAP_SMTP_PASSWORD environment variable, never from the command line.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::super::config::SmtpConfig;
use super::{Notification, NotifyError};

pub const PASSWORD_ENV: &str = "APITAP_SMTP_PASSWORD";

pub struct SmtpNotifier {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
}

impl SmtpNotifier {
    pub fn new(cfg: &SmtpConfig, timeout: Duration) -> Result<SmtpNotifier, NotifyError> {
        let parse = |what: &str, s: &str| {
            s.parse::<Mailbox>()
                .map_err(|e| NotifyError::Smtp(format!("{what} address {s:?}: {e}")))
        };
        let from = parse("from", &cfg.from)?;
        let to = cfg
            .to
            .iter()
            .map(|t| parse("to", t))
            .collect::<Result<Vec<_>, _>>()?;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.server)
            .port(cfg.port)
            .timeout(Some(timeout));
        if let Some(user) = &cfg.username {
            let password = std::env::var(PASSWORD_ENV)
                .ok()
                .or_else(|| cfg.password.clone())
                .ok_or_else(|| {
                    NotifyError::Smtp(format!(
                        "username set but no password (config or {PASSWORD_ENV})"
                    ))
                })?;
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        Ok(SmtpNotifier {
            transport: builder.build(),
            from,
            to,
        })
    }

    pub async fn deliver(&self, n: &Notification) -> Result<(), NotifyError> {
        let subject = format!(
            "[apitap] {} {} {}: {}",
            n.status.as_str().to_uppercase(),
            n.severity.as_str(),
            n.name,
            n.scope()
        );
        let mut builder = Message::builder().from(self.from.clone()).subject(subject);
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        let body = format!("{}\n\n{}", n.summary, n.description());
        let message = builder
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| NotifyError::Smtp(format!("building the message: {e}")))?;
        self.transport
            .send(message)
            .await
            .map_err(|e| NotifyError::Smtp(e.to_string()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> SmtpConfig {
        SmtpConfig {
            server: "127.0.0.1".into(),
            port: 2525,
            from: "apitap@example.test".into(),
            to: vec!["oncall@example.test".into()],
            username: None,
            password: None,
        }
    }

    #[tokio::test]
    async fn a_bad_address_is_refused_with_its_role() {
        let bad = SmtpConfig {
            to: vec!["not an address".into()],
            ..cfg()
        };
        let err = SmtpNotifier::new(&bad, Duration::from_secs(1))
            .err()
            .expect("refused");
        assert!(err.to_string().contains("to address"), "{err}");
    }

    #[tokio::test]
    async fn a_username_needs_a_password_from_the_file_or_the_environment() {
        if std::env::var_os(PASSWORD_ENV).is_some() {
            return; // the environment supplies one; nothing to refuse
        }
        let user = SmtpConfig {
            username: Some("apitap".into()),
            ..cfg()
        };
        let err = SmtpNotifier::new(&user, Duration::from_secs(1))
            .err()
            .expect("refused");
        assert!(err.to_string().contains(PASSWORD_ENV), "{err}");
        let with_password = SmtpConfig {
            password: Some("from-file".into()),
            ..user
        };
        assert!(SmtpNotifier::new(&with_password, Duration::from_secs(1)).is_ok());
    }
}
