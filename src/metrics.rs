//! What joinform counts, in Prometheus form (the `prometheus-client` crate). Counters
//! for every label value are created at start-up, so a request only increments.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::spam::{LimitScope, SpamReason};
use crate::store::Admission;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabels {
    endpoint: &'static str,
    scope: &'static str,
}

/// The admission outcomes, as `Admission::code` names them.
const OUTCOMES: [&str; 6] = [
    "accepted",
    "returning",
    "duplicate",
    "spam",
    "spam_discarded",
    "over_daily_limit",
];

/// The endpoints that are rate limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitedEndpoint {
    Join,
    Token,
}

impl LimitedEndpoint {
    fn code(self) -> &'static str {
        match self {
            Self::Join => "join",
            Self::Token => "token",
        }
    }
}

pub struct Metrics {
    registry: Registry,
    submissions: Family<OutcomeLabel, Counter>,
    spam_reasons: Family<ReasonLabel, Counter>,
    rate_limited: Family<LimitLabels, Counter>,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("joinform");
        let submissions = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "submissions",
            "Valid submissions by what was done with them",
            submissions.clone(),
        );
        let spam_reasons = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "spam_verdicts",
            "Spam verdicts by reason (one submission may have several)",
            spam_reasons.clone(),
        );
        let rate_limited = Family::<LimitLabels, Counter>::default();
        registry.register(
            "rate_limited_requests",
            "Requests refused with 429, by endpoint and by which limit",
            rate_limited.clone(),
        );
        // Every series exists from the start, at zero, so dashboards and alerts see it.
        for outcome in OUTCOMES {
            let _ = submissions.get_or_create(&OutcomeLabel { outcome });
        }
        for reason in SpamReason::ALL {
            let _ = spam_reasons.get_or_create(&ReasonLabel {
                reason: reason.code(),
            });
        }
        for endpoint in [LimitedEndpoint::Join, LimitedEndpoint::Token] {
            for scope in [LimitScope::Client, LimitScope::Global] {
                let _ = rate_limited.get_or_create(&LimitLabels {
                    endpoint: endpoint.code(),
                    scope: scope.code(),
                });
            }
        }
        Self {
            registry,
            submissions,
            spam_reasons,
            rate_limited,
        }
    }

    pub fn admitted(&self, admission: &Admission) {
        self.submissions
            .get_or_create(&OutcomeLabel {
                outcome: admission.code(),
            })
            .inc();
        if let Admission::Spam { reasons, .. } = admission {
            for reason in reasons {
                self.spam_reasons
                    .get_or_create(&ReasonLabel {
                        reason: reason.code(),
                    })
                    .inc();
            }
        }
    }

    pub fn rate_limited(&self, endpoint: LimitedEndpoint, scope: LimitScope) {
        self.rate_limited
            .get_or_create(&LimitLabels {
                endpoint: endpoint.code(),
                scope: scope.code(),
            })
            .inc();
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
