//! `[alerts.smtp]`: one plain-text mail per notification to every recipient.
//!
//! STARTTLS (required: a server that does not offer it is an error, never a silent downgrade),
//! implicit TLS (SMTPS) or none, on the agent's one rustls (ring) stack. AUTH (PLAIN or LOGIN,
//! whichever the server offers) happens inside TLS only; the password is read from the config
//! file or the APITAP_SMTP_PASSWORD environment variable, never from the command line.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{
    Certificate, CertificateStore, Identity, Tls, TlsParameters,
};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::super::config::{SmtpConfig, SmtpTls};
use super::{Notification, NotifyError};
use crate::tls::TlsConfig;

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
        let tls = match cfg.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::Starttls => Tls::Required(tls_parameters(&cfg.server, &cfg.tls_config)?),
            SmtpTls::Implicit => Tls::Wrapper(tls_parameters(&cfg.server, &cfg.tls_config)?),
        };
        if cfg.tls != SmtpTls::None {
            cfg.tls_config.warn_if_insecure("smtp");
        }
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.server)
            .port(cfg.port())
            .tls(tls)
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
            .map_err(|e| NotifyError::Smtp(error_chain(&e)))?;
        Ok(())
    }
}

/// lettre's error with its causes (a TLS failure says "invalid peer certificate: ...").
fn error_chain(e: &lettre::transport::smtp::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// lettre's TLS parameters (rustls with ring) from a `tls_config`: its CA file instead of the
/// system's store, its client certificate, or no verification.
fn tls_parameters(server: &str, tls: &TlsConfig) -> Result<TlsParameters, NotifyError> {
    let err = |what: &str, e: &dyn std::fmt::Display| NotifyError::Tls(format!("{what}: {e}"));
    let read =
        |p: &std::path::Path| std::fs::read(p).map_err(|e| err(&p.display().to_string(), &e));
    let mut b = TlsParameters::builder(server.to_string())
        .dangerous_accept_invalid_certs(tls.insecure_skip_verify);
    if let Some(ca) = &tls.ca_file {
        let pem = read(ca)?;
        b = b
            .certificate_store(CertificateStore::None)
            .add_root_certificate(
                Certificate::from_pem(&pem).map_err(|e| err(&ca.display().to_string(), &e))?,
            );
    }
    if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
        let identity = Identity::from_pem(&read(cert)?, &read(key)?)
            .map_err(|e| err(&cert.display().to_string(), &e))?;
        b = b.identify_with(identity);
    }
    b.build_rustls().map_err(|e| err("smtp TLS", &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> SmtpConfig {
        SmtpConfig {
            server: "127.0.0.1".into(),
            port: Some(2525),
            from: "apitap@example.test".into(),
            to: vec!["oncall@example.test".into()],
            username: None,
            password: None,
            tls: SmtpTls::Starttls,
            tls_config: TlsConfig::default(),
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
