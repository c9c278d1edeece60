//! What joinform counts, in Prometheus form (the `prometheus-client` crate). Counters
//! for every label value are created at start-up, so a request only increments.
//!
//! The follow-up series (open and overdue sign-ups, time to first contact) are not
//! counted as things happen: they are read from the database at each scrape and handed
//! to [`Metrics::set_followup`]. Sign-ups are marked by other processes too (`joinform
//! followup mark` has its own connection), and a counter kept in memory would start
//! from zero at every restart; the database holds every mark, so the figures read from
//! it are right whichever process marked and however often the server restarted. The
//! histogram covers every contacted sign-up that retention still keeps.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use strum::VariantArray;

use crate::domain::{FollowupState, HoldReason, MailKind, PowVerdict, SpamReason};
use crate::spam::{FloodGauge, LimitScope};
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
struct ResultLabel {
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    kind: &'static str,
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SectionLabel {
    section: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SectionStateLabels {
    section: String,
    state: &'static str,
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
    /// GET /join/challenge (proof of work).
    Challenge,
    /// The follow-up pages (`/followup/…`).
    Followup,
    /// The visitor's pages (`/confirm/…`, `/withdraw/…`, `/my-data`).
    Visitor,
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
    pow_verdicts: Family<ResultLabel, Counter>,
    holds: Family<ReasonLabel, Counter>,
    flood: Arc<Mutex<Option<Arc<FloodGauge>>>>,
    rate_limited: Family<LimitLabels, Counter>,
    request_duration: Family<RouteLabel, Histogram>,
    delivery_attempts: Family<DeliveryLabels, Counter>,
    outbox_depth: Family<StateLabel, Gauge>,
    followup: Arc<Mutex<Option<FollowupSeries>>>,
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
        let pow_verdicts = Family::<ResultLabel, Counter>::default();
        registry.register(
            "pow_verdicts",
            "Proofs of work posted with valid submissions, by what they came to",
            pow_verdicts.clone(),
        );
        let holds = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "holds",
            "Sign-ups held for review in a flood (no verified proof of work), by why",
            holds.clone(),
        );
        let flood = Arc::new(Mutex::new(None));
        registry.register_collector(Box::new(FloodCollector(Arc::clone(&flood))));
        let rate_limited = Family::<LimitLabels, Counter>::default();
        registry.register(
            "rate_limited_requests",
            "Requests refused with 429, by endpoint and by which limit (past the global \
             limit, POST /join holds sign-ups instead: see holds)",
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
        let delivery_attempts = Family::<DeliveryLabels, Counter>::default();
        registry.register(
            "delivery_attempts",
            "Mail delivery attempts by kind of mail and result",
            delivery_attempts.clone(),
        );
        let outbox_depth = Family::<StateLabel, Gauge>::default();
        registry.register(
            "outbox_notifications",
            "Outbox rows by state, read when metrics are scraped",
            outbox_depth.clone(),
        );
        let followup = Arc::new(Mutex::new(None));
        registry.register_collector(Box::new(FollowupCollector(Arc::clone(&followup))));
        for &kind in MailKind::VARIANTS {
            for &result in DeliveryResult::VARIANTS {
                let _ = delivery_attempts.get_or_create(&DeliveryLabels {
                    kind: kind.as_str(),
                    result: result.code(),
                });
            }
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
        for &verdict in PowVerdict::VARIANTS {
            let _ = pow_verdicts.get_or_create(&ResultLabel {
                result: verdict.code(),
            });
        }
        for &reason in HoldReason::VARIANTS {
            let _ = holds.get_or_create(&ReasonLabel {
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
            pow_verdicts,
            holds,
            flood,
            rate_limited,
            request_duration,
            delivery_attempts,
            outbox_depth,
            followup,
        }
    }

    pub fn observe_request(&self, route: String, duration: std::time::Duration) {
        self.request_duration
            .get_or_create(&RouteLabel { route })
            .observe(duration.as_secs_f64());
    }

    /// Counts one attempt to deliver a mail of `kind`.
    pub fn delivery_attempt(&self, kind: MailKind, result: DeliveryResult) {
        self.delivery_attempts
            .get_or_create(&DeliveryLabels {
                kind: kind.as_str(),
                result: result.code(),
            })
            .inc();
    }

    /// Replaces the follow-up series with figures just read from the database.
    pub fn set_followup(&self, figures: &FollowupFigures) {
        let mut open: Vec<(String, FollowupState, u64)> = Vec::new();
        let mut overdue: Option<Vec<(String, u64)>> = figures.overdue.as_ref().map(|_| Vec::new());
        let mut first_contact: Vec<(String, Histogram)> = Vec::new();
        // Every configured section has every series, at zero when it has nothing.
        let mut sections = figures.sections.clone();
        let named = figures
            .open
            .iter()
            .map(|(section, _, _)| section)
            .chain(figures.overdue.iter().flatten().map(|(section, _)| section))
            .chain(figures.first_contacts.iter().map(|(section, _)| section));
        for section in named {
            if !sections.contains(section) {
                sections.push(section.clone());
            }
        }
        sections.sort();
        for section in &sections {
            for state in [FollowupState::New, FollowupState::Contacted] {
                let count = figures
                    .open
                    .iter()
                    .filter(|(s, st, _)| s == section && *st == state)
                    .map(|(_, _, count)| count)
                    .sum();
                open.push((section.clone(), state, count));
            }
            if let (Some(series), Some(counts)) = (&mut overdue, &figures.overdue) {
                let count = counts
                    .iter()
                    .filter(|(s, _)| s == section)
                    .map(|(_, count)| count)
                    .sum();
                series.push((section.clone(), count));
            }
            let histogram = Histogram::new(FIRST_CONTACT_BUCKETS.iter().copied());
            for (_, wait) in figures.first_contacts.iter().filter(|(s, _)| s == section) {
                histogram.observe(wait.as_secs_f64());
            }
            first_contact.push((section.clone(), histogram));
        }
        *self.followup.lock().unwrap_or_else(PoisonError::into_inner) = Some(FollowupSeries {
            open,
            overdue,
            first_contact,
        });
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
        if let Admission::Held { reason } = admission {
            self.holds
                .get_or_create(&ReasonLabel {
                    reason: reason.code(),
                })
                .inc();
        }
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

    /// Shows `gauge`'s intake rate and challenge difficulty, read at each scrape.
    pub fn watch_flood(&self, gauge: Arc<FloodGauge>) {
        *self.flood.lock().unwrap_or_else(PoisonError::into_inner) = Some(gauge);
    }

    /// What a submission's proof of work came to, once its single use was checked.
    pub fn proof_of_work(&self, verdict: PowVerdict) {
        self.pow_verdicts
            .get_or_create(&ResultLabel {
                result: verdict.code(),
            })
            .inc();
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

/// The follow-up figures of one scrape, as read from the database.
#[derive(Debug, Clone, Default)]
pub struct FollowupFigures {
    /// The configured sections (and the fallback): each gets every series, at zero
    /// when it has nothing.
    pub sections: Vec<String>,
    /// Open sign-ups by section and state (`store::followup::open_counts`).
    pub open: Vec<(String, FollowupState, u64)>,
    /// Sign-ups still `new` past `followup.remind_after`, by section; `None` when
    /// follow-up is off, which leaves the series out.
    pub overdue: Option<Vec<(String, u64)>>,
    /// Each contacted sign-up's section and time from sign-up to first contact.
    pub first_contacts: Vec<(String, Duration)>,
}

/// The time-to-first-contact buckets, in seconds: 1 minute to 30 days, at the steps
/// organisers think in (`followup.remind_after` is 3 days by default).
const FIRST_CONTACT_BUCKETS: [f64; 16] = [
    60.0,
    5.0 * 60.0,
    15.0 * 60.0,
    30.0 * 60.0,
    3600.0,
    2.0 * 3600.0,
    4.0 * 3600.0,
    8.0 * 3600.0,
    12.0 * 3600.0,
    86_400.0,
    2.0 * 86_400.0,
    3.0 * 86_400.0,
    5.0 * 86_400.0,
    7.0 * 86_400.0,
    14.0 * 86_400.0,
    30.0 * 86_400.0,
];

/// The follow-up series of the last scrape.
#[derive(Debug)]
struct FollowupSeries {
    open: Vec<(String, FollowupState, u64)>,
    overdue: Option<Vec<(String, u64)>>,
    first_contact: Vec<(String, Histogram)>,
}

/// The flood gauge's figures, read when scraped, so they fall back with the rate even
/// when nothing is posted.
#[derive(Debug)]
struct FloodCollector(Arc<Mutex<Option<Arc<FloodGauge>>>>);

impl Collector for FloodCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let gauge = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let Some(gauge) = gauge else {
            return Ok(());
        };
        let now = std::time::Instant::now();
        let figures = [
            (
                "signups_last_minute",
                "Sign-ups taken in during the last minute (the flood gauge's rate)",
                u64::from(gauge.per_minute(now)),
            ),
            (
                "signups_baseline_per_minute",
                "spam.pow_baseline_per_minute: over it, unproved sign-ups are held",
                u64::from(gauge.baseline()),
            ),
            (
                "pow_maxnumber",
                "The maxnumber of the proof-of-work challenges issued now (their difficulty)",
                gauge.difficulty(now),
            ),
        ];
        for (name, help, value) in figures {
            let metric = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
            metric.encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)?;
        }
        Ok(())
    }
}

/// Writes the follow-up series, as last set, into each exposition.
#[derive(Debug)]
struct FollowupCollector(Arc<Mutex<Option<FollowupSeries>>>);

impl Collector for FollowupCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let series = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(series) = series.as_ref() else {
            return Ok(());
        };
        let gauge = |count: u64| ConstGauge::new(i64::try_from(count).unwrap_or(i64::MAX));
        let mut open = encoder.encode_descriptor(
            "followup_open",
            "Accepted sign-ups still open, by section and state (new, contacted), read at scrape",
            None,
            MetricType::Gauge,
        )?;
        for (section, state, count) in &series.open {
            let labels = SectionStateLabels {
                section: section.clone(),
                state: state.as_str(),
            };
            gauge(*count).encode(open.encode_family(&labels)?)?;
        }
        if let Some(overdue) = &series.overdue {
            let mut family = encoder.encode_descriptor(
                "followup_overdue",
                "Sign-ups still new past followup.remind_after, by section, read at scrape",
                None,
                MetricType::Gauge,
            )?;
            for (section, count) in overdue {
                let labels = SectionLabel {
                    section: section.clone(),
                };
                gauge(*count).encode(family.encode_family(&labels)?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "followup_time_to_first_contact_seconds",
            "Time from sign-up to first contact of the contacted sign-ups retention keeps, \
             by section, computed from the database at scrape",
            None,
            MetricType::Histogram,
        )?;
        for (section, histogram) in &series.first_contact {
            let labels = SectionLabel {
                section: section.clone(),
            };
            histogram.encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
