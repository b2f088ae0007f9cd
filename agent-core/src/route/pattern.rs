//! Explicit route patterns (config and OpenAPI): `/api/users/{id}`, `/static/*`.
//!
//! A segment containing `{` is a parameter and matches exactly one non-empty segment (this
//! covers OpenAPI's `{id}` and mixed forms such as `{name}.{ext}`); `*` as the last segment
//! matches any tail, including none (`/static/*` matches `/static` and `/static/a/b`); every
//! other segment is literal and matched exactly (percent-encoding is not decoded). When several
//! patterns match, the most specific wins: at each position a literal beats a parameter, which
//! beats `*`. The template reported is the pattern as written, normalized to single slashes.

use super::RouteError;
use foldhash::HashMap;
use std::sync::Arc;

#[derive(Debug, Default, Clone)]
struct Node {
    literal: HashMap<Box<str>, usize>,
    param: Option<usize>,
    /// Template of a `*` pattern ending here.
    wildcard: Option<Arc<str>>,
    /// Template of a pattern ending exactly here.
    template: Option<Arc<str>>,
}

/// A set of patterns compiled into a trie.
#[derive(Debug, Clone)]
pub struct PatternSet {
    nodes: Vec<Node>,
    len: usize,
}

impl Default for PatternSet {
    fn default() -> Self {
        PatternSet {
            nodes: vec![Node::default()],
            len: 0,
        }
    }
}

/// Non-empty segments of a path, without query or fragment.
pub fn segments(path: &str) -> impl Iterator<Item = &str> {
    let end = memchr::memchr2(b'?', b'#', path.as_bytes()).unwrap_or(path.len());
    let path = &path[..end];
    // Split at ASCII '/' bytes: every piece is valid UTF-8.
    path.as_bytes()
        .split(|b| *b == b'/')
        .filter(|s| !s.is_empty())
        .map(move |s| {
            let at = s.as_ptr() as usize - path.as_ptr() as usize;
            &path[at..at + s.len()]
        })
}

impl PatternSet {
    /// Number of patterns added.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds one pattern; a later duplicate of an earlier pattern is ignored.
    pub fn add(&mut self, pattern: &str) -> Result<(), RouteError> {
        let invalid = |reason: &str| RouteError::InvalidPattern {
            pattern: pattern.to_string(),
            reason: reason.to_string(),
        };
        if !pattern.starts_with('/') {
            return Err(invalid("must start with /"));
        }
        if pattern.contains(['?', '#']) {
            return Err(invalid("must not contain a query or fragment"));
        }
        let segs: Vec<&str> = segments(pattern).collect();
        let template: Arc<str> = format!("/{}", segs.join("/")).into();
        let mut node = 0;
        for (i, seg) in segs.iter().enumerate() {
            if *seg == "*" {
                if i + 1 != segs.len() {
                    return Err(invalid("* is only allowed as the last segment"));
                }
                if self.nodes[node].wildcard.is_none() {
                    self.nodes[node].wildcard = Some(template);
                    self.len += 1;
                }
                return Ok(());
            }
            if seg.contains('{') != seg.contains('}') {
                return Err(invalid("unbalanced { }"));
            }
            node = if seg.contains('{') {
                match self.nodes[node].param {
                    Some(n) => n,
                    None => {
                        let n = self.push();
                        self.nodes[node].param = Some(n);
                        n
                    }
                }
            } else {
                match self.nodes[node].literal.get(*seg) {
                    Some(&n) => n,
                    None => {
                        let n = self.push();
                        self.nodes[node].literal.insert((*seg).into(), n);
                        n
                    }
                }
            };
        }
        if self.nodes[node].template.is_none() {
            self.nodes[node].template = Some(template);
            self.len += 1;
        }
        Ok(())
    }

    fn push(&mut self) -> usize {
        self.nodes.push(Node::default());
        self.nodes.len() - 1
    }

    /// The most specific matching template for these segments.
    pub fn find(&self, segs: &[&str]) -> Option<&Arc<str>> {
        self.find_from(0, segs)
    }

    fn find_from(&self, node: usize, segs: &[&str]) -> Option<&Arc<str>> {
        let n = &self.nodes[node];
        let Some((first, rest)) = segs.split_first() else {
            return n.template.as_ref().or(n.wildcard.as_ref());
        };
        if let Some(&child) = n.literal.get(*first)
            && let Some(t) = self.find_from(child, rest)
        {
            return Some(t);
        }
        if let Some(child) = n.param
            && let Some(t) = self.find_from(child, rest)
        {
            return Some(t);
        }
        n.wildcard.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn set(patterns: &[&str]) -> PatternSet {
        let mut s = PatternSet::default();
        patterns
            .iter()
            .for_each(|p| s.add(p).expect("valid pattern"));
        s
    }

    #[rstest]
    #[case::param_matches_one_segment("/api/users/42", Some("/api/users/{id}"))]
    #[case::literal_beats_param("/api/users/me", Some("/api/users/me"))]
    #[case::param_does_not_match_two_segments("/api/users/42/x", None)]
    #[case::wildcard_matches_tail("/static/css/site.css", Some("/static/*"))]
    #[case::wildcard_matches_empty_tail("/static", Some("/static/*"))]
    #[case::query_is_ignored("/api/users/42?x=1", Some("/api/users/{id}"))]
    #[case::duplicate_slashes_ignored("//api//users/42/", Some("/api/users/{id}"))]
    #[case::mixed_param_segment("/files/report.pdf", Some("/files/{name}.{ext}"))]
    #[case::backtracks_from_literal_to_param("/api/users/me/posts", Some("/api/users/{id}/posts"))]
    #[case::no_match("/other", None)]
    fn finds_most_specific_template(#[case] path: &str, #[case] want: Option<&str>) {
        let s = set(&[
            "/api/users/{id}",
            "/api/users/me",
            "/api/users/{id}/posts",
            "/static/*",
            "/files/{name}.{ext}",
        ]);
        let segs: Vec<&str> = segments(path).collect();
        assert_eq!(s.find(&segs).map(|t| &**t), want);
    }

    #[rstest]
    #[case::relative("api/users")]
    #[case::inner_wildcard("/a/*/b")]
    #[case::unbalanced("/a/{id")]
    #[case::query("/a?b=1")]
    fn rejects_invalid_pattern(#[case] pattern: &str) {
        assert!(PatternSet::default().add(pattern).is_err());
    }
}
