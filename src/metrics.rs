//! What joinform counts, in Prometheus form (the `prometheus-client` crate). Counters
//! for every label value are created at start-up, so a request only increments.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use strum::VariantArray;

use crate::domain::SpamReason;
use crate::spam::LimitScope;
use crate::store::outbox::DeliveryState;
use crate::store::{Admission, AdmissionOutcome};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabels {
    endpoint: &'static str,
    scope: &'static str,
}

/// The endpoints that are rate limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::VariantArray)]
#[strum(serialize_all = "snake_case")]
pub enum LimitedEndpoint {
    Join,
    Token,
}

impl LimitedEndpoint {
    fn code(self) -> &'static str {
        self.into()
    }
}

pub struct Metrics {
    registry: Registry,
    submissions: Family<OutcomeLabel, Counter>,
    spam_reasons: Family<ReasonLabel, Counter>,
    rate_limited: Family<LimitLabels, Counter>,
    request_duration: Family<RouteLabel, Histogram>,
    delivery_attempts: Family<ResultLabel, Counter>,
    outbox_depth: Family<StateLabel, Gauge>,
}

/// What came of one delivery attempt, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::VariantArray)]
#[strum(serialize_all = "snake_case")]
pub enum DeliveryResult {
    Sent,
    /// A transient failure: the row will be retried.
    Retry,
    /// Given up on: SMTP 5xx, or retried for too long.
    Failed,
}

impl DeliveryResult {
    fn code(self) -> &'static str {
        self.into()
    }
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
        let request_duration = Family::<RouteLabel, Histogram>::new_with_constructor(|| {
            // 0.25 ms to about 8 s, doubling.
            Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
        });
        registry.register(
            "request_duration_seconds",
            "Time from request to response, by route pattern",
            request_duration.clone(),
        );
        let delivery_attempts = Family::<ResultLabel, Counter>::default();
        registry.register(
            "delivery_attempts",
            "Notification delivery attempts by result",
            delivery_attempts.clone(),
        );
        let outbox_depth = Family::<StateLabel, Gauge>::default();
        registry.register(
            "outbox_notifications",
            "Outbox rows by state, read when metrics are scraped",
            outbox_depth.clone(),
        );
        for &result in DeliveryResult::VARIANTS {
            let _ = delivery_attempts.get_or_create(&ResultLabel {
                result: result.code(),
            });
        }
        // Every series exists from the start, at zero, so dashboards and alerts see it.
        for &outcome in AdmissionOutcome::VARIANTS {
            let _ = submissions.get_or_create(&OutcomeLabel {
                outcome: outcome.into(),
            });
        }
        for &reason in SpamReason::VARIANTS {
            let _ = spam_reasons.get_or_create(&ReasonLabel {
                reason: reason.code(),
            });
        }
        for &endpoint in LimitedEndpoint::VARIANTS {
            for &scope in LimitScope::VARIANTS {
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
            request_duration,
            delivery_attempts,
            outbox_depth,
        }
    }

    pub fn observe_request(&self, route: String, duration: std::time::Duration) {
        self.request_duration
            .get_or_create(&RouteLabel { route })
            .observe(duration.as_secs_f64());
    }

    pub fn delivery_attempt(&self, result: DeliveryResult) {
        self.delivery_attempts
            .get_or_create(&ResultLabel {
                result: result.code(),
            })
            .inc();
    }

    /// Sets the outbox gauges from fresh counts by state.
    pub fn set_outbox_depth(&self, counts: &[(DeliveryState, i64)]) {
        for &(state, count) in counts {
            self.outbox_depth
                .get_or_create(&StateLabel {
                    state: state.as_str(),
                })
                .set(count);
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
