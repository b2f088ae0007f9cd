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
