//! The learned route tree: templates inferred from traffic when no explicit pattern matches.
//!
//! Each node is a path position. A segment that looks like an identifier (see
//! [`looks_like_id`]) goes to the node's `{id}` child. Other segments become literal children
//! until a position has seen more than `max_distinct` distinct literals; then the position
//! *collapses*: its literal children (and their subtrees) are dropped and every later segment
//! there goes to `{id}`. The number of nodes is bounded by `max_nodes`; a segment that would
//! need a node past the bound goes to an existing `{id}` child if there is one, otherwise the
//! rest of the path is reported as `*` (`/api/*`), and each such event is counted.
//!
//! Scanners must not be able to shape the tree, so callers learn only from requests the server
//! recognised (see `Router::route`); other requests are matched against what is known.

use super::classify::looks_like_id;
use foldhash::HashMap;
use serde_json::{Value, json};
use std::sync::Arc;

const ID: &str = "{id}";

#[derive(Debug, Default, Clone)]
struct Node {
    literal: HashMap<Box<str>, u32>,
    id: Option<u32>,
    collapsed: bool,
    terminal: bool,
    /// This node's template, made the first time a request ends here and shared by every
    /// record after (a node's template never changes while it exists).
    template: Option<Arc<str>>,
    /// `…/*`: the template of a path that found the tree full below this node.
    star: Option<Arc<str>>,
}

/// Counters of what the bounds did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LearnedStats {
    pub nodes: usize,
    pub node_limit_hits: u64,
    pub collapses: u64,
}

#[derive(Debug, Clone)]
pub struct LearnedTree {
    nodes: Vec<Node>,
    free: Vec<u32>,
    max_distinct: usize,
    max_nodes: usize,
    stats: LearnedStats,
    /// Where a template is spelled out before it is looked up (kept: no allocation per call).
    scratch: String,
}

impl LearnedTree {
    pub fn new(max_distinct: usize, max_nodes: usize) -> LearnedTree {
        LearnedTree {
            nodes: vec![Node::default()],
            free: Vec::new(),
            max_distinct: max_distinct.max(1),
            max_nodes: max_nodes.max(1),
            stats: LearnedStats {
                nodes: 1,
                ..Default::default()
            },
            scratch: String::new(),
        }
    }

    pub fn stats(&self) -> LearnedStats {
        self.stats
    }

    fn alloc(&mut self) -> Option<u32> {
        if self.stats.nodes >= self.max_nodes {
            self.stats.node_limit_hits += 1;
            return None;
        }
        self.stats.nodes += 1;
        match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = Node::default();
                Some(i)
            }
            None => {
                self.nodes.push(Node::default());
                Some(self.nodes.len() as u32 - 1)
            }
        }
    }

    fn release(&mut self, node: u32) {
        let n = std::mem::take(&mut self.nodes[node as usize]);
        for child in n.literal.into_values().chain(n.id) {
            self.release(child);
        }
        self.free.push(node);
        self.stats.nodes -= 1;
    }

    fn id_child(&mut self, node: u32, learn: bool) -> Option<u32> {
        if let Some(c) = self.nodes[node as usize].id {
            return Some(c);
        }
        if !learn {
            return None;
        }
        let c = self.alloc()?;
        self.nodes[node as usize].id = Some(c);
        Some(c)
    }

    fn collapse(&mut self, node: u32) {
        let children: Vec<u32> = self.nodes[node as usize]
            .literal
            .drain()
            .map(|(_, c)| c)
            .collect();
        children.into_iter().for_each(|c| self.release(c));
        self.nodes[node as usize].collapsed = true;
        self.stats.collapses += 1;
    }

    /// The template for `segs`. With `learn`, unknown segments extend the tree; without, an
    /// unknown literal falls back to the position's `{id}` child and `None` means no template
    /// is known.
    pub fn template(&mut self, segs: &[&str], learn: bool) -> Option<Arc<str>> {
        let mut out = std::mem::take(&mut self.scratch);
        out.clear();
        let found = self.spell(segs, learn, &mut out);
        self.scratch = out;
        found
    }

    /// Walks (and with `learn`, grows) the tree along `segs`, spelling the template into
    /// `out`; returns the shared template of the node where it ends.
    fn spell(&mut self, segs: &[&str], learn: bool, out: &mut String) -> Option<Arc<str>> {
        let mut node = 0u32;
        for seg in segs {
            let literal = !looks_like_id(seg) && !self.nodes[node as usize].collapsed;
            let known = if literal {
                self.nodes[node as usize].literal.get(*seg).copied()
            } else {
                None
            };
            let next = match known {
                Some(c) => Some((c, *seg)),
                None if literal && learn => self.new_literal(node, seg),
                None => self.id_child(node, learn).map(|c| (c, ID)),
            };
            let Some((child, label)) = next else {
                if !learn {
                    return None;
                }
                out.push_str("/*");
                let n = &mut self.nodes[node as usize];
                return Some(Arc::clone(n.star.get_or_insert_with(|| Arc::from(&**out))));
            };
            out.push('/');
            out.push_str(label);
            node = child;
        }
        if learn {
            self.nodes[node as usize].terminal = true;
        } else if !self.nodes[node as usize].terminal {
            return None;
        }
        if out.is_empty() {
            out.push('/');
        }
        let n = &mut self.nodes[node as usize];
        Some(Arc::clone(
            n.template.get_or_insert_with(|| Arc::from(&**out)),
        ))
    }

    /// A new literal child of `node`, or the `{id}` child when the position collapses or no
    /// node can be allocated.
    fn new_literal<'s>(&mut self, node: u32, seg: &'s str) -> Option<(u32, &'s str)> {
        if self.nodes[node as usize].literal.len() >= self.max_distinct {
            self.collapse(node);
            return self.id_child(node, true).map(|c| (c, ID));
        }
        match self.alloc() {
            Some(c) => {
                self.nodes[node as usize].literal.insert(seg.into(), c);
                Some((c, seg))
            }
            None => self.nodes[node as usize].id.map(|c| (c, ID)),
        }
    }

    /// Templates and collapsed positions, for persistence:
    /// `{"version":1,"templates":["/api/users/{id}",…],"collapsed":["/api/users",…]}`.
    pub fn state(&self) -> Value {
        let mut templates = Vec::new();
        let mut collapsed = Vec::new();
        self.walk(0, String::new(), &mut templates, &mut collapsed);
        templates.sort();
        collapsed.sort();
        json!({"version": 1, "templates": templates, "collapsed": collapsed})
    }

    fn walk(
        &self,
        node: u32,
        prefix: String,
        templates: &mut Vec<String>,
        collapsed: &mut Vec<String>,
    ) {
        let n = &self.nodes[node as usize];
        let here = if prefix.is_empty() {
            "/".to_string()
        } else {
            prefix.clone()
        };
        if n.terminal {
            templates.push(here.clone());
        }
        if n.collapsed {
            collapsed.push(here);
        }
        for (seg, &c) in &n.literal {
            self.walk(c, format!("{prefix}/{seg}"), templates, collapsed);
        }
        if let Some(c) = n.id {
            self.walk(c, format!("{prefix}/{ID}"), templates, collapsed);
        }
    }

    /// Re-creates what [`state`](Self::state) saved (bounds still apply). Returns how many
    /// templates were loaded.
    pub fn load(&mut self, state: &Value) -> Result<usize, String> {
        if state.get("version").and_then(Value::as_u64) != Some(1) {
            return Err("unsupported learned-routes state (version 1 expected)".into());
        }
        let list = |key: &str| -> Result<Vec<&str>, String> {
            match state.get(key) {
                None => Ok(Vec::new()),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .ok_or_else(|| format!("`{key}` must hold strings"))
                    })
                    .collect(),
                Some(_) => Err(format!("`{key}` must be an array")),
            }
        };
        let (collapsed, templates) = (list("collapsed")?, list("templates")?);
        for path in collapsed {
            if let Some(node) = self.insert(path) {
                let n = &mut self.nodes[node as usize];
                if !n.collapsed {
                    n.collapsed = true;
                    self.stats.collapses += 1;
                }
            }
        }
        let mut loaded = 0;
        for path in templates {
            if let Some(node) = self.insert(path) {
                self.nodes[node as usize].terminal = true;
                loaded += 1;
            }
        }
        Ok(loaded)
    }

    /// Walks/creates the nodes of a saved template (`{id}` segments are the id child).
    fn insert(&mut self, path: &str) -> Option<u32> {
        let mut node = 0u32;
        for seg in super::pattern::segments(path) {
            node = if seg == ID || self.nodes[node as usize].collapsed {
                self.id_child(node, true)?
            } else if let Some(&c) = self.nodes[node as usize].literal.get(seg) {
                c
            } else {
                let c = self.alloc()?;
                self.nodes[node as usize].literal.insert(seg.into(), c);
                c
            };
        }
        Some(node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn learn(t: &mut LearnedTree, path: &str) -> Option<String> {
        let segs: Vec<&str> = super::super::pattern::segments(path).collect();
        t.template(&segs, true).map(|t| t.to_string())
    }

    #[rstest]
    #[case::numeric_id("/api/users/42", "/api/users/{id}")]
    #[case::uuid_then_literal(
        "/orders/123e4567-e89b-12d3-a456-426614174000/items",
        "/orders/{id}/items"
    )]
    #[case::root("/", "/")]
    #[case::words_stay("/api/health", "/api/health")]
    fn learns_template(#[case] path: &str, #[case] want: &str) {
        let mut t = LearnedTree::new(50, 100);
        assert_eq!(learn(&mut t, path).as_deref(), Some(want));
    }

    #[rstest]
    fn position_with_too_many_values_collapses_to_id() {
        let mut t = LearnedTree::new(3, 100);
        for name in ["alice", "bob", "carol"] {
            assert_eq!(
                learn(&mut t, &format!("/u/{name}/profile")),
                Some(format!("/u/{name}/profile"))
            );
        }
        assert_eq!(
            learn(&mut t, "/u/dave/profile").as_deref(),
            Some("/u/{id}/profile")
        );
        assert_eq!(
            learn(&mut t, "/u/alice/profile").as_deref(),
            Some("/u/{id}/profile")
        );
        assert_eq!(t.stats().collapses, 1);
        // The dropped subtrees were given back: root, u, {id}, profile.
        assert_eq!(t.stats().nodes, 4);
    }

    #[rstest]
    fn node_bound_is_counted_and_tail_becomes_star() {
        let mut t = LearnedTree::new(50, 3);
        assert_eq!(learn(&mut t, "/a/b").as_deref(), Some("/a/b"));
        assert_eq!(learn(&mut t, "/a/c/d").as_deref(), Some("/a/*"));
        assert_eq!(t.stats().node_limit_hits, 1);
        assert!(t.stats().nodes <= 3);
    }

    #[rstest]
    fn matching_without_learning_never_grows_the_tree() {
        let mut t = LearnedTree::new(50, 100);
        learn(&mut t, "/users/7");
        let before = t.stats().nodes;
        assert_eq!(
            t.template(&["users", "nobody"], false).as_deref(),
            Some("/users/{id}")
        );
        assert_eq!(t.template(&["wp-admin.php"], false), None);
        assert_eq!(t.template(&["users"], false), None);
        assert_eq!(t.stats().nodes, before);
    }

    #[rstest]
    fn state_round_trips() {
        let mut t = LearnedTree::new(2, 100);
        for p in ["/a/x", "/a/y", "/a/z", "/b/5/c"] {
            learn(&mut t, p);
        }
        let state = t.state();
        let want =
            json!({"version": 1, "templates": ["/a/{id}", "/b/{id}/c"], "collapsed": ["/a"]});
        assert_eq!(state, want);
        let mut u = LearnedTree::new(2, 100);
        assert_eq!(u.load(&state), Ok(2));
        assert_eq!(u.state(), state);
        assert_eq!(learn(&mut u, "/a/new").as_deref(), Some("/a/{id}"));
    }

    #[rstest]
    #[case::wrong_version(json!({"version": 9}))]
    #[case::templates_not_strings(json!({"version": 1, "templates": [1]}))]
    fn rejects_bad_state(#[case] state: Value) {
        assert!(LearnedTree::new(50, 100).load(&state).is_err());
    }
}
