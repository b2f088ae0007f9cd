//! Series budgets: how many label sets a metric may hold before new ones collapse.
//!
//! Admission is first come, first served and permanent: once a series exists it keeps its
//! labels, so counters stay monotonic across scrapes (a budget applied at render time would make
//! series flap between their own name and `other`). A label set that arrives when the budget is
//! spent is recorded under `endpoint="other"` (or `client="other"`) instead, and the aggregator
//! counts each such observation in `apitap_series_collapsed_total{metric}`. Collapse targets themselves
//! are always admitted; their number is bounded by the other labels (service, method, status).

/// Metrics with a series budget, i.e. the values of `apitap_series_collapsed_total{metric}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Budgeted {
    Requests,
    Duration,
    RequestSize,
    ResponseSize,
    Errors,
    RateLimits,
    AuthFailures,
    ClientRequests,
    Services,
}

impl Budgeted {
    pub const ALL: [Budgeted; 9] = [
        Budgeted::Requests,
        Budgeted::Duration,
        Budgeted::RequestSize,
        Budgeted::ResponseSize,
        Budgeted::Errors,
        Budgeted::RateLimits,
        Budgeted::AuthFailures,
        Budgeted::ClientRequests,
        Budgeted::Services,
    ];

    /// The `metric` label value.
    pub fn metric(self) -> &'static str {
        match self {
            Budgeted::Requests => "api_requests_total",
            Budgeted::Duration => "api_request_duration_seconds",
            Budgeted::RequestSize => "api_request_size_bytes",
            Budgeted::ResponseSize => "api_response_size_bytes",
            Budgeted::Errors => "api_errors_total",
            Budgeted::RateLimits => "api_rate_limit_hits_total",
            Budgeted::AuthFailures => "api_auth_failures_total",
            Budgeted::ClientRequests => "api_client_requests_total",
            Budgeted::Services => "service",
        }
    }
}

/// One metric's budget.
#[derive(Clone, Debug, Default)]
pub struct Budget {
    limit: usize,
    used: usize,
}

impl Budget {
    pub fn new(limit: usize) -> Budget {
        Budget { limit, used: 0 }
    }

    /// Takes one series slot if any is left.
    pub fn admit(&mut self) -> bool {
        if self.used < self.limit {
            self.used += 1;
            true
        } else {
            false
        }
    }

    /// Gives back `n` slots (series removed, e.g. an evicted client's).
    pub fn release(&mut self, n: usize) {
        self.used = self.used.saturating_sub(n);
    }

    pub fn used(&self) -> usize {
        self.used
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    fn admits_up_to_the_limit_then_refuses() {
        let mut b = Budget::new(2);
        assert_eq!((b.admit(), b.admit(), b.admit()), (true, true, false));
        b.release(1);
        assert!(b.admit());
    }
}
