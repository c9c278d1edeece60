//! Country names in the page's language, from CLDR (the Unicode Consortium's ICU4X with
//! its compiled data), sorted as a reader of that language expects.

use std::collections::HashMap;

use icu_collator::Collator;
use icu_collator::options::CollatorOptions;
use icu_experimental::displaynames::DisplayNamesOptions;
use icu_experimental::displaynames::multi::RegionDisplayNames;
use icu_locale_core::Locale;
use icu_locale_core::subtags::Region;

use crate::domain::CountryCode;

/// Every accepted country with its name, per shipped language; built once at start-up
/// so that a request only reads a list.
#[derive(Debug, Default)]
pub struct CountryNames {
    by_language: HashMap<&'static str, Vec<(CountryCode, String)>>,
}

impl CountryNames {
    /// Names for every language in `languages`. A language CLDR lacks gets English
    /// names; a country CLDR has no name for shows its code.
    pub fn build(languages: impl IntoIterator<Item = &'static str>) -> Self {
        let by_language = languages
            .into_iter()
            .map(|language| (language, sorted_names(language)))
            .collect();
        Self { by_language }
    }

    /// The sorted (code, name) list for a shipped language; empty for any other.
    pub fn list(&self, language: &str) -> &[(CountryCode, String)] {
        self.by_language
            .get(language)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }
}

fn sorted_names(language: &str) -> Vec<(CountryCode, String)> {
    let locale: Locale = language.parse().unwrap_or_else(|_| Locale::UNKNOWN.clone());
    let display =
        RegionDisplayNames::try_new(locale.clone().into(), DisplayNamesOptions::default())
            .or_else(|_| {
                let english: Locale = super::REFERENCE_LANGUAGE.parse().unwrap_or(Locale::UNKNOWN);
                RegionDisplayNames::try_new(english.into(), DisplayNamesOptions::default())
            })
            .ok();
    let mut names: Vec<(CountryCode, String)> = CountryCode::all()
        .map(|code| {
            let name = display
                .as_ref()
                .zip(Region::try_from_str(code.as_str()).ok())
                .and_then(|(display, region)| display.of(region))
                .map_or_else(|| code.as_str().to_owned(), str::to_owned);
            (code, name)
        })
        .collect();
    match Collator::try_new(locale.into(), CollatorOptions::default()) {
        Ok(collator) => names.sort_by(|a, b| collator.compare(&a.1, &b.1).then(a.0.cmp(&b.0))),
        Err(_) => names.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0))),
    }
    names
}

/// For tests: the position of `code` in `language`'s list.
#[cfg(test)]
fn position(names: &CountryNames, language: &str, code: &str) -> Option<usize> {
    names
        .list(language)
        .iter()
        .position(|(c, _)| c.as_str() == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_in_the_page_language() {
        let names = CountryNames::build(["en", "de", "ar", "nb"]);
        let name_of = |language: &str, code: &str| {
            names
                .list(language)
                .iter()
                .find(|(c, _)| c.as_str() == code)
                .map(|(_, name)| name.clone())
        };
        assert_eq!(name_of("en", "DE").as_deref(), Some("Germany"));
        assert_eq!(name_of("de", "DE").as_deref(), Some("Deutschland"));
        assert_eq!(name_of("ar", "DE").as_deref(), Some("ألمانيا"));
        assert_eq!(name_of("nb", "XK").as_deref(), Some("Kosovo"));
        for language in ["en", "de", "ar", "nb"] {
            assert_eq!(names.list(language).len(), CountryCode::all().count());
            assert!(
                names.list(language).iter().all(|(c, n)| n != c.as_str()),
                "{language}: every country has a name"
            );
        }
        assert!(names.list("xx").is_empty());
    }

    #[test]
    fn sorting_follows_the_language() {
        let names = CountryNames::build(["de", "sv"]);
        // German sorts Ö with O: Österreich before Pakistan.
        assert!(position(&names, "de", "AT") < position(&names, "de", "PK"));
        // Swedish sorts Ö after Z: Österrike after Zimbabwe.
        assert!(position(&names, "sv", "AT") > position(&names, "sv", "ZW"));
    }
}
