//! Route templates: the `endpoint` label and the log's `http.route`.
//!
//! Order of precedence for a request path (query and fragment never take part):
//! 1. explicit patterns from the config (`/api/users/{id}`, `/static/*`);
//! 2. paths imported from an OpenAPI document ([`Router::add_openapi_str`]);
//! 3. the learned tree ([`learned`]): identifier-looking segments and positions with too many
//!    distinct values become `{id}`.
//!
//! Requests the server did not recognise (status 400, 404, 405, 414, or a malformed request)
//! are only *matched* against the learned tree, never learned from, so a scanner walking
//! thousands of random paths cannot fill or collapse it; when nothing matches their endpoint
//! is [`UNMATCHED`]. A transaction without a path keeps `route = None` (the aggregator labels
//! it `unknown`).

pub mod classify;
pub mod learned;
pub mod method;
pub mod openapi;
pub mod pattern;
pub mod recent;

pub use method::{METHODS, method_index, normalize_method};

use crate::export::{MetricKind, MetricRow, SelfMetric, table_samples};
use crate::spares::SpareText;
use crate::transaction::{ErrorType, Transaction};
use learned::LearnedTree;
use pattern::{PatternSet, segments};
use recent::RecentRoutes;
use serde::Deserialize;
use smallvec::SmallVec;
use std::sync::Arc;

/// Endpoint of an unrecognised request that matches no known template.
pub const UNMATCHED: &str = "unmatched";
/// The endpoint of every request the server could not parse (`error.type` malformed_request).
pub const MALFORMED_ROUTE: &str = "malformed";

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RouteError {
    #[error("invalid route pattern `{pattern}`: {reason}")]
    InvalidPattern { pattern: String, reason: String },
    #[error("OpenAPI document: {0}")]
    OpenApi(String),
    #[error("learned routes state: {0}")]
    State(String),
}

/// Route settings (`[routes]` in the agent's config).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RouteConfig {
    /// Explicit patterns, checked first: `{name}` matches one segment, a final `*` any tail.
    pub patterns: Vec<String>,
    /// OpenAPI 3 document (YAML or JSON) whose `paths` become patterns; the agent reads the
    /// file and passes its text to [`Router::add_openapi_str`].
    pub openapi: Option<String>,
    /// Distinct literal values a path position may take before it collapses to `{id}`
    /// (default 50).
    pub max_distinct_segment_values: usize,
    /// Bound on learned-tree nodes (default 10,000).
    pub max_nodes: usize,
}

impl Default for RouteConfig {
    fn default() -> Self {
        RouteConfig {
            patterns: Vec::new(),
            openapi: None,
            max_distinct_segment_values: 50,
            max_nodes: 10_000,
        }
    }
}

/// Sets `Transaction::route`. Owned by the pipeline task that routes (learning mutates it).
#[derive(Debug, Clone)]
pub struct Router {
    config: PatternSet,
    openapi: PatternSet,
    learned: LearnedTree,
    unmatched: u64,
    unmatched_label: Arc<str>,
    /// Recent paths' templates; a known path's template changes only at a collapse in the
    /// learned tree (the cache's generation) or when patterns or state are loaded (emptied).
    recent: RecentRoutes,
    /// Templates handed back from finished records ([`Router::give_back`]).
    spare: SpareText,
}

impl Router {
    /// A router with the config's patterns (the OpenAPI file, if any, is added by the caller).
    pub fn new(cfg: &RouteConfig) -> Result<Router, RouteError> {
        let mut config = PatternSet::default();
        for p in &cfg.patterns {
            config.add(p)?;
        }
        Ok(Router {
            config,
            openapi: PatternSet::default(),
            learned: LearnedTree::new(cfg.max_distinct_segment_values, cfg.max_nodes),
            unmatched: 0,
            unmatched_label: Arc::from(UNMATCHED),
            recent: RecentRoutes::default(),
            spare: SpareText::default(),
        })
    }

    /// A router with default settings and the paths of this OpenAPI document.
    pub fn from_openapi_str(text: &str) -> Result<Router, RouteError> {
        let mut r = Router::new(&RouteConfig::default())?;
        r.add_openapi_str(text)?;
        Ok(r)
    }

    /// Adds the paths of an OpenAPI document; returns how many patterns were added.
    pub fn add_openapi_str(&mut self, text: &str) -> Result<usize, RouteError> {
        let patterns = openapi::patterns(text)?;
        self.recent.clear(self.generation());
        for p in &patterns {
            self.openapi.add(p)?;
        }
        Ok(patterns.len())
    }

    /// Sets `tx.route` from `tx.path` (see the module doc for the rules); a malformed request
    /// is [`MALFORMED_ROUTE`]. A gRPC call's route
    /// is its path, `/package.Service/Method`: already a low-cardinality name (the series
    /// budgets still bound it), never learned or templated.
    pub fn route(&mut self, tx: &mut Transaction) {
        if tx.rpc.is_some()
            && let Some(path) = tx.path.as_deref()
            && crate::http2::grpc::split_path(path).is_some()
        {
            tx.route = Some(Arc::from(path));
            return;
        }
        if tx.error == Some(ErrorType::MalformedRequest) {
            // Whatever its target, a request the server could not parse is one endpoint.
            tx.route = Some(Arc::from(MALFORMED_ROUTE));
            return;
        }
        let learn = !matches!(tx.status, Some(400 | 404 | 405 | 414));
        tx.route = tx.path.as_ref().map(|p| self.recent_template(p, learn));
    }

    /// [`template`](Self::template), through the recent-paths cache when learning. A walk that
    /// learns gives a known path the template every later learning walk gives it, until a
    /// collapse or a reload (the cache's generation). Walks that only match are not cached:
    /// a literal the tree lacks falls back to `{id}` there, where learning would add it. Walks
    /// that count a node-limit hit are not cached either, so each such request is counted.
    fn recent_template(&mut self, path: &Arc<str>, learn: bool) -> Arc<str> {
        if !learn {
            return self.template(path, false);
        }
        let generation = self.generation();
        let miss = match self.recent.get(path, generation) {
            Ok(t) => return self.spare.share(t),
            Err(miss) => miss,
        };
        let limit_hits = self.learned.stats().node_limit_hits;
        let unmatched = self.unmatched;
        let t = self.template(path, true);
        if self.learned.stats().node_limit_hits == limit_hits && self.unmatched == unmatched {
            self.recent.put(miss, path, &t, self.generation());
        }
        t
    }

    /// Takes back the route of a record nobody reads any more, for a later record with the
    /// same template (see [`crate::spares`]).
    pub fn give_back(&mut self, route: Option<Arc<str>>) {
        self.spare.give_back(route);
    }

    fn generation(&self) -> u64 {
        self.learned.stats().collapses
    }

    /// The template for `path`; with `learn`, the learned tree may grow. Templates are shared:
    /// a route seen before costs no allocation.
    pub fn template(&mut self, path: &str, learn: bool) -> Arc<str> {
        let segs: SmallVec<[&str; 16]> = segments(path).collect();
        if let Some(t) = self.config.find(&segs).or_else(|| self.openapi.find(&segs)) {
            return Arc::clone(t);
        }
        match self.learned.template(&segs, learn) {
            Some(t) => t,
            None => {
                self.unmatched += 1;
                Arc::clone(&self.unmatched_label)
            }
        }
    }

    /// Learned templates to persist (`{"version":1,"templates":[…],"collapsed":[…]}`).
    pub fn learned_state(&self) -> serde_json::Value {
        self.learned.state()
    }

    /// Restores learned templates saved by [`learned_state`](Self::learned_state); returns how
    /// many templates were loaded.
    pub fn load_state(&mut self, state: &serde_json::Value) -> Result<usize, RouteError> {
        let loaded = self.learned.load(state).map_err(RouteError::State);
        self.recent.clear(self.generation());
        loaded
    }

    /// `apitap_route_*` figures: learned nodes, node-bound hits, collapses, unmatched requests.
    pub fn self_metrics(&self) -> Vec<SelfMetric> {
        table_samples(&ROUTER, self)
    }
}

const ROUTER: [MetricRow<Router>; 4] = [
    MetricRow::plain(
        "apitap_route_learned_nodes",
        "Nodes in the learned route tree.",
        MetricKind::Gauge,
        |r| r.learned.stats().nodes as u64,
    ),
    MetricRow::plain(
        "apitap_route_node_limit_hits_total",
        "Path segments that found the learned route tree full.",
        MetricKind::Counter,
        |r| r.learned.stats().node_limit_hits,
    ),
    MetricRow::plain(
        "apitap_route_collapses_total",
        "Path positions collapsed to {id} for having too many distinct values.",
        MetricKind::Counter,
        |r| r.learned.stats().collapses,
    ),
    MetricRow::plain(
        "apitap_route_unmatched_total",
        "Unrecognised requests (e.g. 404) that matched no known route.",
        MetricKind::Counter,
        |r| r.unmatched,
    ),
];

#[cfg(test)]
mod tests;
