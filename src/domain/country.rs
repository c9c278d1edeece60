//! The visitor's country.

use std::fmt;

use super::FieldProblem;
use super::text::{is_forbidden, trim_edges};

/// The officially assigned ISO 3166-1 alpha-2 codes (249, as published by the ISO 3166
/// Maintenance Agency) plus XK, the user-assigned code in common use for Kosovo. Sorted,
/// so lookup is a binary search.
const ASSIGNED_CODES: [&str; 250] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "XK", "YE", "YT", "ZA", "ZM", "ZW",
];

/// An assigned ISO 3166-1 alpha-2 country code, upper-case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    /// Accepts any case and surrounding whitespace: `no`, ` NO `, `No`.
    pub fn parse(raw: &str) -> Result<Self, FieldProblem> {
        let trimmed = trim_edges(raw);
        if trimmed.chars().any(is_forbidden) {
            return Err(FieldProblem::ControlCharacters);
        }
        if trimmed.is_empty() {
            return Err(FieldProblem::Required);
        }
        let upper = trimmed.to_ascii_uppercase();
        match upper.as_bytes() {
            &[a, b] if ASSIGNED_CODES.binary_search(&upper.as_str()).is_ok() => Ok(Self([a, b])),
            _ => Err(FieldProblem::InvalidCountry),
        }
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII letters from ASSIGNED_CODES are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }

    /// Every code `parse` accepts.
    pub fn all() -> impl Iterator<Item = Self> {
        ASSIGNED_CODES
            .iter()
            .filter_map(|code| Self::parse(code).ok())
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_as_its_upper_case_code() {
        assert_eq!(CountryCode::parse("no").unwrap().to_string(), "NO");
    }

    #[test]
    fn list_is_sorted_and_complete() {
        assert!(ASSIGNED_CODES.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(CountryCode::all().count(), 250);
    }

    #[test]
    fn any_case_is_accepted_and_stored_upper() {
        for raw in ["no", "NO", "No", " nO ", "xk"] {
            let code = CountryCode::parse(raw).unwrap();
            assert_eq!(code.as_str(), raw.trim().to_ascii_uppercase());
        }
    }

    #[test]
    fn unassigned_and_malformed_codes_are_refused() {
        let cases = [
            ("", FieldProblem::Required, "empty"),
            (
                "ZZ",
                FieldProblem::InvalidCountry,
                "user-assigned, not Kosovo",
            ),
            (
                "UK",
                FieldProblem::InvalidCountry,
                "exceptionally reserved, not assigned",
            ),
            ("NOR", FieldProblem::InvalidCountry, "alpha-3"),
            ("N", FieldProblem::InvalidCountry, "one letter"),
            ("Ñø", FieldProblem::InvalidCountry, "non-ASCII"),
            ("578", FieldProblem::InvalidCountry, "numeric code"),
        ];
        for (raw, problem, reason) in cases {
            assert_eq!(CountryCode::parse(raw), Err(problem), "{reason}");
        }
    }
}
