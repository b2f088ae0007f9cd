//! Bearer-token authentication of /api/*: a configured token, or one generated at first start
//! and kept in `<data-dir>/api-token` (mode 0600). Tokens are compared in constant time.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use subtle::ConstantTimeEq;

use super::ApiError;

/// File name of the generated token inside the data directory.
pub const TOKEN_FILE: &str = "api-token";

/// The secret; `Debug` never shows it.
#[derive(Clone)]
pub struct ApiToken(Arc<str>);

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiToken(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot create data directory {}: {source}", dir.display())]
    DataDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read API token file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write API token file {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("API token file {} is empty", path.display())]
    Empty { path: PathBuf },
    #[error("no random source: {0}")]
    Random(String),
}

impl ApiToken {
    pub fn new(token: &str) -> ApiToken {
        ApiToken(Arc::from(token))
    }

    /// The configured token, else the one in `<data_dir>/api-token`, else a new one written
    /// there (32 random bytes as hex, mode 0600). Logs the file's path, never the token.
    pub fn resolve(configured: Option<&str>, data_dir: &Path) -> Result<ApiToken, TokenError> {
        if let Some(token) = configured {
            return Ok(ApiToken::new(token));
        }
        let path = data_dir.join(TOKEN_FILE);
        if let Some(token) = read_token(&path)? {
            tracing::info!(path = %path.display(), "API token loaded");
            return Ok(token);
        }
        std::fs::create_dir_all(data_dir).map_err(|source| TokenError::DataDir {
            dir: data_dir.to_path_buf(),
            source,
        })?;
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| TokenError::Random(e.to_string()))?;
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path);
        match file {
            Ok(mut file) => {
                file.write_all(token.as_bytes())
                    .and_then(|()| file.write_all(b"\n"))
                    .and_then(|()| file.sync_all())
                    .map_err(|source| TokenError::Write {
                        path: path.clone(),
                        source,
                    })?;
                tracing::info!(path = %path.display(), "API token generated; /api/* needs it as a bearer token");
                Ok(ApiToken::new(&token))
            }
            // Another process created it between our read and create: use theirs.
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                read_token(&path)?.ok_or(TokenError::Empty { path })
            }
            Err(source) => Err(TokenError::Write { path, source }),
        }
    }

    /// Constant-time comparison (the length of the token is not secret).
    pub fn matches(&self, candidate: &[u8]) -> bool {
        bool::from(self.0.as_bytes().ct_eq(candidate))
    }
}

fn read_token(path: &Path) -> Result<Option<ApiToken>, TokenError> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let token = text.trim();
            if token.is_empty() {
                return Err(TokenError::Empty {
                    path: path.to_path_buf(),
                });
            }
            if let Ok(meta) = std::fs::metadata(path)
                && meta.permissions().mode() & 0o077 != 0
            {
                tracing::warn!(path = %path.display(), "API token file is readable by other users; chmod 600 it");
            }
            Ok(Some(ApiToken::new(token)))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(source) => Err(TokenError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// 401 without `Authorization: Bearer …`, 403 with a wrong token.
pub async fn require_token(
    State(token): State<ApiToken>,
    request: Request,
    next: Next,
) -> Response {
    let Some(value) = request.headers().get(AUTHORIZATION) else {
        return ApiError::Unauthorized.into_response();
    };
    let bytes = value.as_bytes();
    let scheme_ok = bytes.len() > 7 && bytes[..7].eq_ignore_ascii_case(b"bearer ");
    if !scheme_ok {
        return ApiError::Unauthorized.into_response();
    }
    let candidate = bytes[7..].trim_ascii();
    if !token.matches(candidate) {
        return ApiError::Forbidden.into_response();
    }
    next.run(request).await
}
