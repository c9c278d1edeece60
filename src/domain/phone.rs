//! The visitor's phone number.

use icu_properties::props::{Dash, GeneralCategory};
use icu_properties::{CodePointMapData, CodePointSetData};

use super::FieldProblem;
use super::text::{is_forbidden, is_invisible};

const MIN_DIGITS: usize = 6;
/// ITU-T E.164 numbers have at most 15 digits.
const MAX_DIGITS: usize = 15;
/// Room for 15 digits, a `+` and a separator between each pair, no more; so a number
/// padded with separators is refused.
const MAX_CHARS: usize = 32;
/// The Unicode blocks "Halfwidth and Fullwidth Forms" and "Small Form Variants": what
/// East Asian input methods type for ASCII (`＋８１ ９０－１２３４`, `﹢`). NFKC maps each
/// of them to its plain form.
const COMPATIBILITY_FORMS: [std::ops::RangeInclusive<char>; 2] =
    ['\u{FF00}'..='\u{FFEF}', '\u{FE50}'..='\u{FE6F}'];
/// KATAKANA-HIRAGANA PROLONGED SOUND MARK, which Japanese input methods give for the
/// hyphen key in kana mode: between digits it can only mean a hyphen.
const PROLONGED_SOUND_MARK: char = '\u{30FC}';

/// A plausible phone number: 6 to 15 digits, with an optional leading `+` and the
/// separators people type (`( ) - .` and spaces), at most 32 characters. Kept as typed,
/// but in ASCII (see [`PhoneNumber::parse`]) with whitespace collapsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Reads what keyboards of every script and copy-paste produce:
    /// - a decimal digit of any script (Unicode General_Category Nd: Persian `۹`,
    ///   Arabic-Indic `٩`, Devanagari `९`, ...) is that ASCII digit;
    /// - a full-width form (`＋ （ ） － ． ８`) is its ASCII character;
    /// - any dash (the Unicode Dash property: `‐ ‑ – — −`, and the `ー` Japanese input
    ///   methods give for the hyphen key) is `-`;
    /// - invisible characters (format characters such as the direction marks a contacts
    ///   app wraps a number in, and variation selectors) are dropped wherever they are.
    ///
    /// `Ok(None)` when the visitor left it empty.
    ///
    /// # Errors
    /// [`FieldProblem::ControlCharacters`] for a line break or other control character;
    /// [`FieldProblem::InvalidPhone`] for anything else that is not such a number.
    pub fn parse(raw: &str) -> Result<Option<Self>, FieldProblem> {
        let mut ascii = String::with_capacity(raw.len());
        for c in raw.chars().filter(|&c| !is_invisible(c)) {
            if is_forbidden(c) {
                return Err(FieldProblem::ControlCharacters);
            }
            push_ascii(&mut ascii, c);
        }
        let collapsed = ascii.split_whitespace().collect::<Vec<_>>().join(" ");
        if collapsed.is_empty() {
            return Ok(None);
        }
        let digits = collapsed.chars().filter(char::is_ascii_digit).count();
        let body = collapsed.strip_prefix('+').unwrap_or(&collapsed);
        let separators_only = body
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '(' | ')' | '-' | '.' | ' '));
        if collapsed.chars().count() > MAX_CHARS
            || !separators_only
            || !(MIN_DIGITS..=MAX_DIGITS).contains(&digits)
        {
            return Err(FieldProblem::InvalidPhone);
        }
        Ok(Some(Self(collapsed)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Appends `c` as the ASCII character it stands for in a phone number, or as itself.
fn push_ascii(out: &mut String, c: char) {
    if COMPATIBILITY_FORMS.iter().any(|forms| forms.contains(&c)) {
        unicode_normalization::char::decompose_compatible(c, |part| push_plain(out, part));
    } else {
        push_plain(out, c);
    }
}

/// A digit of any script as its ASCII digit, any dash (the Unicode Dash property:
/// `‐ ‑ – — −`, ...) as `-`, anything else as itself.
fn push_plain(out: &mut String, c: char) {
    if let Some(digit) = decimal_digit(c).and_then(|value| char::from_digit(value, 10)) {
        out.push(digit);
    } else if c == PROLONGED_SOUND_MARK || CodePointSetData::new::<Dash>().contains(c) {
        out.push('-');
    } else {
        out.push(c);
    }
}

/// The value of a decimal digit of any script (General_Category Nd).
///
/// Unicode encodes the decimal digits of a script as one contiguous run from 0 to 9,
/// and where runs adjoin (the mathematical digits) each is a whole set of ten (The
/// Unicode Standard, section 4.6 "Numeric Value"; a test checks the data we ship). So a
/// digit's value is its distance from the start of its run, modulo 10.
fn decimal_digit(c: char) -> Option<u32> {
    let category = CodePointMapData::<GeneralCategory>::new();
    if category.get(c) != GeneralCategory::DecimalNumber {
        return None;
    }
    let mut start = u32::from(c);
    while let Some(before) = start.checked_sub(1)
        && category.get32(before) == GeneralCategory::DecimalNumber
    {
        start = before;
    }
    Some((u32::from(c) - start) % 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plausible_numbers() {
        for raw in [
            "+47 22 33 44 55",
            "(0)30 1234-5678",
            "555.123.4567",
            "123456",
            "+447911123456",
        ] {
            assert!(PhoneNumber::parse(raw).unwrap().is_some(), "{raw}");
        }
        assert_eq!(PhoneNumber::parse("   "), Ok(None));
    }

    #[test]
    fn implausible_numbers() {
        let cases = [
            ("12345", "five digits"),
            ("1234567890123456", "sixteen digits"),
            ("+47 22 33 44 55 ext 3", "letters"),
            ("47+22334455", "plus not leading"),
            ("++4722334455", "two pluses"),
            ("+47 (22) 33 44 55 66 77 88 99 00 1", "over 32 characters"),
        ];
        for (raw, reason) in cases {
            assert_eq!(
                PhoneNumber::parse(raw),
                Err(FieldProblem::InvalidPhone),
                "{reason}"
            );
        }
    }

    #[test]
    fn digits_of_every_script_and_full_width_forms_are_stored_in_ascii() {
        let cases = [
            ("+۹۸ ۹۱۲ ۳۴۵ ۶۷۸۹", "+98 912 345 6789", "Persian digits"),
            (
                "+٩٦٦ ٥٠ ١٢٣ ٤٥٦٧",
                "+966 50 123 4567",
                "Arabic-Indic digits",
            ),
            ("+९१ ९८७६५ ४३२१०", "+91 98765 43210", "Devanagari digits"),
            ("+৮৮০ ১৭১১ ১২৩৪৫৬", "+880 1711 123456", "Bengali digits"),
            ("๐๘๑ ๒๓๔ ๕๖๗๘", "081 234 5678", "Thai digits"),
            (
                "＋８１ ９０－１２３４－５６７８",
                "+81 90-1234-5678",
                "full-width forms",
            ),
            (
                "（０３）１２３４．５６７８",
                "(03)1234.5678",
                "full-width brackets, full stop",
            ),
            (
                "+81\u{3000}90 1234 5678",
                "+81 90 1234 5678",
                "ideographic space",
            ),
            (
                "+47 912\u{2011}34\u{2013}567",
                "+47 912-34-567",
                "non-breaking hyphen, en dash",
            ),
            ("𝟎𝟗𝟏𝟐𝟑𝟒𝟓𝟔", "09123456", "mathematical bold digits"),
            ("+4７ ９12 34 5６7", "+47 912 34 567", "scripts mixed"),
            (
                "０９０−１２３４−５６７８",
                "090-1234-5678",
                "minus sign (macOS IME)",
            ),
            ("+47 912−34−567", "+47 912-34-567", "minus sign"),
            ("090ー1234ー5678", "090-1234-5678", "prolonged sound mark"),
            (
                "090ｰ1234ｰ5678",
                "090-1234-5678",
                "half-width prolonged sound mark",
            ),
            ("﹢47 91234567", "+47 91234567", "small plus sign"),
        ];
        for (raw, stored, reason) in cases {
            assert_eq!(
                PhoneNumber::parse(raw).map(|p| p.map(|p| p.0)),
                Ok(Some(stored.to_owned())),
                "{reason}"
            );
        }
    }

    #[test]
    fn invisible_characters_are_dropped_anywhere() {
        let cases = [
            (
                "\u{202D}+47 912 34 567\u{202C}",
                "+47 912 34 567",
                "override from a contacts app",
            ),
            (
                "\u{2066}+47 912 34 567\u{2069}",
                "+47 912 34 567",
                "isolate",
            ),
            (
                "\u{200E}+47\u{200E} 912 34 567",
                "+47 912 34 567",
                "left-to-right marks",
            ),
            (
                "\u{FEFF}+47 912 34 567",
                "+47 912 34 567",
                "byte-order mark",
            ),
            (
                "+47\u{200B}912\u{200B}34567",
                "+4791234567",
                "zero-width spaces inside",
            ),
            (
                "+47 912 34 567\u{FE0F}",
                "+47 912 34 567",
                "variation selector",
            ),
            (
                "\u{202B}+٤٧ ٩١٢ ٣٤ ٥٦٧\u{202C}",
                "+47 912 34 567",
                "embedding, Arabic-Indic",
            ),
        ];
        for (raw, stored, reason) in cases {
            assert_eq!(
                PhoneNumber::parse(raw).map(|p| p.map(|p| p.0)),
                Ok(Some(stored.to_owned())),
                "{reason}"
            );
        }
        assert_eq!(
            PhoneNumber::parse("\u{200B}\u{2060} "),
            Ok(None),
            "nothing visible"
        );
    }

    #[test]
    fn what_is_not_a_digit_stays_refused() {
        let cases = [
            (
                "+47 ²² 33 44 55",
                FieldProblem::InvalidPhone,
                "superscripts are not digits",
            ),
            (
                "①②③④⑤⑥",
                FieldProblem::InvalidPhone,
                "circled numbers are not digits",
            ),
            (
                "+47 ٢٢ Ⅻ 44 55",
                FieldProblem::InvalidPhone,
                "a Roman numeral",
            ),
            (
                "＋８１ ９０ ＡＢＣ",
                FieldProblem::InvalidPhone,
                "full-width letters",
            ),
            (
                "+47 22 33\u{2028}44 55",
                FieldProblem::ControlCharacters,
                "line separator",
            ),
            (
                "+47 22 33\n44 55",
                FieldProblem::ControlCharacters,
                "line feed",
            ),
            ("۱۲۳۴۵", FieldProblem::InvalidPhone, "five Persian digits"),
            (
                "۱۲۳۴۵۶۷۸۹۰۱۲۳۴۵۶",
                FieldProblem::InvalidPhone,
                "sixteen Persian digits",
            ),
        ];
        for (raw, problem, reason) in cases {
            assert_eq!(PhoneNumber::parse(raw), Err(problem), "{reason}");
        }
    }

    #[test]
    fn the_32_character_limit_counts_what_is_stored() {
        // 14 digits, well within E.164, but padded with separators to 33 characters.
        let padded = "+47 . 22 . 33 . 44 . 55 . 66 . 77";
        assert_eq!(padded.chars().count(), 33);
        assert_eq!(PhoneNumber::parse(padded), Err(FieldProblem::InvalidPhone));
        let at_limit = "+47 . 22 . 33 . 44 . 55 . 66 .77";
        assert_eq!(at_limit.chars().count(), 32);
        assert!(PhoneNumber::parse(at_limit).unwrap().is_some());
        // Full-width input is counted after it became ASCII, and invisible characters
        // are not counted at all.
        let wide = format!(
            "\u{202D}{}\u{202C}",
            "＋４７ ． ２２ ． ３３ ． ４４ ． ５５ ． ６６ ．７７"
        );
        assert!(PhoneNumber::parse(&wide).unwrap().is_some());
        let whitespace_collapses = "+47     22     33     44     55     66";
        assert!(whitespace_collapses.chars().count() > 32);
        assert!(PhoneNumber::parse(whitespace_collapses).unwrap().is_some());
    }

    #[test]
    fn every_decimal_digit_has_its_value() {
        let category = CodePointMapData::<GeneralCategory>::new();
        let mut runs = 0;
        for range in category.iter_ranges_for_value(GeneralCategory::DecimalNumber) {
            runs += 1;
            let start = *range.start();
            // The rule decimal_digit relies on: runs are whole sets of ten.
            assert_eq!((range.end() - start + 1) % 10, 0, "{range:x?}");
            for code in range {
                let c = char::from_u32(code).unwrap();
                let value = decimal_digit(c).unwrap();
                assert_eq!(value, (code - start) % 10);
                // Where Unicode itself maps a digit to ASCII, it agrees.
                let mut folded = String::new();
                unicode_normalization::char::decompose_compatible(c, |d| folded.push(d));
                if let Some(ascii) = folded.chars().next().filter(char::is_ascii_digit) {
                    assert_eq!(ascii.to_digit(10), Some(value), "U+{code:04X}");
                }
            }
        }
        assert!(runs > 50, "ICU's data lists the digits of many scripts");
        assert_eq!(decimal_digit('7'), Some(7));
        assert_eq!(decimal_digit('۷'), Some(7));
        assert_eq!(decimal_digit('٧'), Some(7));
        assert_eq!(decimal_digit('a'), None);
        assert_eq!(decimal_digit('½'), None);
    }
}
