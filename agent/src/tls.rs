//! One TLS stack for every outbound connection (webhook, Alertmanager, SMTP, Redis): rustls
//! with the ring crypto provider. No OpenSSL, no native-tls, no aws-lc-rs (it needs cmake and
//! nasm to build).
//!
//! Each destination has a `tls_config` table with the names Prometheus and Alertmanager use:
//!
//! ```toml
//! [store.tls_config]                     # also [alerts.tls_config], [alerts.smtp.tls_config]
//! ca_file = "/etc/apitap/ca.pem"         # trust only these CAs (default: the system's store)
//! cert_file = "/etc/apitap/client.pem"   # client certificate chain, for mutual TLS
//! key_file = "/etc/apitap/client.key"    # its private key (PKCS#8, PKCS#1 or SEC1 PEM)
//! insecure_skip_verify = false           # accept any server certificate (logged loudly)
//! ```
//!
//! Files are read once at start; a missing or unparsable file is a configuration error.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, ring};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A destination's `tls_config` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM file of the CA certificates to trust instead of the system's store.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate chain presented when the server asks (mutual TLS).
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    pub key_file: Option<PathBuf>,
    /// Accept any server certificate. Anyone on the path can then read and change the traffic:
    /// only for tests; logged as a warning at every start.
    pub insecure_skip_verify: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {reason}", path = .path.display())]
    Read { path: PathBuf, reason: String },
    #[error("{path}: {reason}", path = .path.display())]
    Parse { path: PathBuf, reason: String },
    #[error("cert_file and key_file go together")]
    HalfIdentity,
    #[error("{0}")]
    Rustls(#[from] rustls::Error),
}

/// Installs ring as the process's rustls provider (crates that build their own ClientConfig,
/// such as redis, use it). Idempotent.
pub fn install_provider() {
    let _ = ring::default_provider().install_default();
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::Read {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

fn parse_err(path: &Path, reason: impl ToString) -> TlsError {
    TlsError::Parse {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Every certificate in a PEM file (at least one).
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| parse_err(path, e))?;
    if certs.is_empty() {
        return Err(parse_err(path, "no PEM certificate in it"));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| parse_err(path, e))
}

impl TlsConfig {
    /// Whether anything differs from the defaults (system roots, no client certificate).
    pub fn is_set(&self) -> bool {
        *self != TlsConfig::default()
    }

    /// Checks the settings and reads every file once; the message names the problem.
    pub fn validate(&self) -> Result<(), TlsError> {
        self.client_config().map(|_| ())
    }

    /// The client certificate chain and key, when configured.
    pub fn identity(
        &self,
    ) -> Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>, TlsError> {
        match (&self.cert_file, &self.key_file) {
            (Some(c), Some(k)) => Ok(Some((read_certs(c)?, read_key(k)?))),
            (None, None) => Ok(None),
            _ => Err(TlsError::HalfIdentity),
        }
    }

    /// The trusted roots: `ca_file`, else the system's store.
    fn roots(&self) -> Result<RootCertStore, TlsError> {
        let mut roots = RootCertStore::empty();
        match &self.ca_file {
            Some(path) => {
                for cert in read_certs(path)? {
                    roots.add(cert).map_err(|e| parse_err(path, e))?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                let (added, _) = roots.add_parsable_certificates(found.certs);
                if added == 0 {
                    tracing::warn!(
                        "no system CA certificates found: TLS servers can only be trusted through ca_file"
                    );
                }
            }
        }
        Ok(roots)
    }

    /// A rustls client configuration (ring) for this destination.
    pub fn client_config(&self) -> Result<ClientConfig, TlsError> {
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?;
        let builder = if self.insecure_skip_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider())))
        } else {
            builder.with_root_certificates(self.roots()?)
        };
        Ok(match self.identity()? {
            Some((chain, key)) => builder.with_client_auth_cert(chain, key)?,
            None => builder.with_no_client_auth(),
        })
    }

    /// Says loudly, once at start, that `destination` is not verified.
    pub fn warn_if_insecure(&self, destination: &str) {
        if self.insecure_skip_verify {
            tracing::warn!(
                destination,
                "TLS CERTIFICATE VERIFICATION IS OFF (insecure_skip_verify = true): anyone on the \
                 path can read and change this traffic"
            );
        }
    }
}

/// `insecure_skip_verify`: any certificate is accepted; handshake signatures are still checked
/// (against the certificate presented), so the session itself is sound.
#[derive(Debug)]
struct AcceptAnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_use_the_system_store_and_no_identity() {
        let t = TlsConfig::default();
        assert!(!t.is_set());
        assert!(t.identity().expect("no files").is_none());
        assert!(t.client_config().is_ok());
    }

    #[test]
    fn a_certificate_without_its_key_is_refused() {
        let t = TlsConfig {
            cert_file: Some("/nonexistent/c.pem".into()),
            ..TlsConfig::default()
        };
        assert_eq!(
            t.validate().expect_err("half").to_string(),
            "cert_file and key_file go together"
        );
    }

    #[test]
    fn unreadable_and_empty_files_name_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = TlsConfig {
            ca_file: Some(dir.path().join("missing.pem")),
            ..TlsConfig::default()
        };
        let err = t.validate().expect_err("missing").to_string();
        assert!(
            err.starts_with("cannot read ") && err.contains("missing.pem"),
            "{err}"
        );
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        let t = TlsConfig {
            ca_file: Some(empty),
            ..TlsConfig::default()
        };
        let err = t.validate().expect_err("empty").to_string();
        assert!(err.contains("no PEM certificate"), "{err}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<TlsConfig>("ca = \"x\"").is_err());
        let t: TlsConfig = toml::from_str("insecure_skip_verify = true").expect("parses");
        assert!(t.insecure_skip_verify && t.is_set());
        assert!(t.client_config().is_ok());
    }
}
