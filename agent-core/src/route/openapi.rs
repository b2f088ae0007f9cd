//! Route templates from an OpenAPI document (3.x; Swagger 2.0 `paths` work the same way), in
//! YAML or JSON. Every key of `paths` that starts with `/` becomes a pattern, prefixed with the
//! path part of each `servers[].url` (`https://api.example.com/v1` serves `/users` at
//! `/v1/users`; Swagger 2.0's `basePath` likewise). Only `paths` keys are read: operations,
//! schemas and `x-` extensions are ignored.

use super::RouteError;
use serde_json::Value;

/// The request-path patterns an OpenAPI document declares, base paths applied (sorted).
pub fn patterns(text: &str) -> Result<Vec<String>, RouteError> {
    let doc: Value = if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| RouteError::OpenApi(format!("invalid JSON: {e}")))?
    } else {
        serde_yaml_ng::from_str(text)
            .map_err(|e| RouteError::OpenApi(format!("invalid YAML: {e}")))?
    };
    if doc.get("openapi").is_none() && doc.get("swagger").is_none() {
        return Err(RouteError::OpenApi(
            "no `openapi` (or `swagger`) version field".into(),
        ));
    }
    let paths = doc
        .get("paths")
        .and_then(Value::as_object)
        .ok_or_else(|| RouteError::OpenApi("no `paths` object".into()))?;
    let bases = base_paths(&doc);
    let mut out = Vec::new();
    for key in paths.keys().filter(|k| k.starts_with('/')) {
        for base in &bases {
            out.push(format!("{base}{key}"));
        }
    }
    Ok(out)
}

/// Path prefixes from `servers[].url` (3.x) or `basePath` (2.0); `[""]` when none.
fn base_paths(doc: &Value) -> Vec<String> {
    let mut bases: Vec<String> = doc
        .get("servers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.get("url").and_then(Value::as_str))
        .map(url_path)
        .chain(doc.get("basePath").and_then(Value::as_str).map(url_path))
        .collect();
    if bases.is_empty() {
        bases.push(String::new());
    }
    bases.sort();
    bases.dedup();
    bases
}

/// The path of a server URL without its trailing slash: `https://h/v1/` -> `/v1`, `/v2` ->
/// `/v2`, `https://h` -> ``.
fn url_path(url: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = if url.contains("://") {
        after_scheme.find('/').map_or("", |i| &after_scheme[i..])
    } else {
        after_scheme
    };
    path.trim_end_matches('/').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const YAML: &str = r#"
openapi: 3.0.3
info: {title: Users, version: "1"}
servers:
  - url: https://api.example.com/v1/
paths:
  /users:
    get: {responses: {"200": {description: ok}}}
  /users/{userId}:
    get: {responses: {"200": {description: ok}}}
  x-internal: {}
"#;

    #[rstest]
    fn yaml_paths_get_the_server_base_path() {
        assert_eq!(
            patterns(YAML).expect("valid"),
            ["/v1/users", "/v1/users/{userId}"]
        );
    }

    #[rstest]
    fn json_document_without_servers() {
        let json = r#"{"openapi":"3.1.0","paths":{"/orders/{id}":{},"/health":{}}}"#;
        assert_eq!(patterns(json).expect("valid"), ["/health", "/orders/{id}"]);
    }

    #[rstest]
    fn swagger_base_path_applies() {
        let json = r#"{"swagger":"2.0","basePath":"/api","paths":{"/pets":{}}}"#;
        assert_eq!(patterns(json).expect("valid"), ["/api/pets"]);
    }

    #[rstest]
    #[case::not_yaml("paths: [unclosed")]
    #[case::no_version("paths: {}")]
    #[case::no_paths("openapi: 3.0.0")]
    fn rejects_documents_without_paths(#[case] text: &str) {
        assert!(patterns(text).is_err());
    }
}
