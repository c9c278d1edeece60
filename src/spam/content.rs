//! Content rules: patterns that real sign-ups do not have. Each rule that fires adds
//! its weight; the submission is spam when the sum reaches `spam.threshold`.

use std::sync::LazyLock;

use regex::{Regex, RegexSet, RegexSetBuilder};

use crate::config::SpamSettings;
use crate::domain::{NewSubmission, SpamReason};

/// Weights, documented in `config/joinform.toml`. A link where no link belongs, too many
/// links, or a blocked phrase is enough alone at the default threshold (5); odd
/// characters in a name only count together with something else.
const LINK_WEIGHT: u32 = 5;
const BLOCKED_WEIGHT: u32 = 5;
const SYMBOLS_IN_NAME_WEIGHT: u32 = 3;
const DIGITS_IN_NAME_WEIGHT: u32 = 2;

/// A URL, a `www.` host, or a bare host under a top-level domain spammers favour, with
/// the rest of the link, so that one URL counts once. Bare hosts are limited to a list on purpose: "St.Petersburg" or "J.R.R. Tolkien"
/// are not links.
static LINK: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(?:\b[a-z][a-z0-9+.-]*://|\bwww\.|\b[a-z0-9-]+\.(?:com|net|org|info|biz|ru|cn|xyz|top|io|click|link|shop|site|online|store|app|live|club|ly)\b)\S*",
    )
    .unwrap_or_else(|error| unreachable!("the link pattern is valid: {error}"))
});

/// Characters no one's name carries, in any script.
const NAME_SYMBOLS: &[char] = &[
    '<', '>', '{', '}', '[', ']', '|', '\\', '/', '@', '#', '$', '%', '^', '*', '=', '_', '~', '+',
    '`', ':', ';', '!', '?', '&',
];

pub struct ContentRules {
    max_links: usize,
    /// Lower-cased, to compare with lower-cased text.
    blocked_phrases: Vec<String>,
    blocked_patterns: RegexSet,
}

impl ContentRules {
    /// The settings were checked when loaded: every pattern compiles.
    pub fn from_settings(settings: &SpamSettings) -> Self {
        let blocked_patterns = RegexSetBuilder::new(&settings.blocked_patterns)
            .size_limit(1 << 20)
            .build()
            .unwrap_or_else(|_| RegexSet::empty());
        Self {
            max_links: settings.max_links,
            blocked_phrases: settings
                .blocked_phrases
                .iter()
                .map(|phrase| phrase.trim().to_lowercase())
                .collect(),
            blocked_patterns,
        }
    }

    /// The total weight and the rules that fired.
    pub fn score(&self, submission: &NewSubmission) -> (u32, Vec<SpamReason>) {
        let mut fired = Vec::new();
        let name = submission.name.as_str();
        if LINK.is_match(name) {
            fired.push((SpamReason::LinkInName, LINK_WEIGHT));
        }
        if submission
            .city
            .as_ref()
            .is_some_and(|city| LINK.is_match(city.as_str()))
        {
            fired.push((SpamReason::LinkInCity, LINK_WEIGHT));
        }
        let links = submission
            .message
            .as_ref()
            .map_or(0, |message| LINK.find_iter(message.as_str()).count());
        if links > self.max_links {
            fired.push((SpamReason::TooManyLinks, LINK_WEIGHT));
        }
        let texts = || {
            [
                Some(name),
                submission.city.as_ref().map(|c| c.as_str()),
                submission.message.as_ref().map(|m| m.as_str()),
            ]
            .into_iter()
            .flatten()
            .chain(submission.extra.values().map(String::as_str))
        };
        if !self.blocked_phrases.is_empty() {
            let hit = texts().any(|text| {
                let text = text.to_lowercase();
                self.blocked_phrases
                    .iter()
                    .any(|p| text.contains(p.as_str()))
            });
            if hit {
                fired.push((SpamReason::BlockedPhrase, BLOCKED_WEIGHT));
            }
        }
        if !self.blocked_patterns.is_empty() && texts().any(|t| self.blocked_patterns.is_match(t)) {
            fired.push((SpamReason::BlockedPattern, BLOCKED_WEIGHT));
        }
        if name.contains(NAME_SYMBOLS) {
            fired.push((SpamReason::SymbolsInName, SYMBOLS_IN_NAME_WEIGHT));
        }
        if name.chars().any(|c| c.is_numeric()) {
            fired.push((SpamReason::DigitsInName, DIGITS_IN_NAME_WEIGHT));
        }
        let score = fired.iter().map(|(_, weight)| weight).sum();
        (score, fired.into_iter().map(|(reason, _)| reason).collect())
    }
}
