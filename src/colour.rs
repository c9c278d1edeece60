//! Colours of the form pages and their contrast (WCAG 2.x), so that the shipped
//! colours and a configured accent colour can be checked to meet level AA.

/// Body text.
pub const TEXT: &str = "#1a1a1a";
/// Hints under labels.
pub const HINT: &str = "#4a4a4a";
/// Error messages and the error summary's border.
pub const ERROR: &str = "#b3261e";
/// Input borders (non-text: WCAG asks 3:1).
pub const BORDER: &str = "#595959";
/// The page background; button text on the accent colour is this too.
pub const BACKGROUND: &str = "#ffffff";
/// `form.accent_color` by default: links, focus rings, the button.
pub const DEFAULT_ACCENT: &str = "#1d4ed8";

/// WCAG AA for normal text.
pub const AA_TEXT: f64 = 4.5;

/// Parses `#rrggbb`.
pub fn parse_hex(colour: &str) -> Option<[u8; 3]> {
    let hex = colour.strip_prefix('#')?;
    if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let channel = |i: usize| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok();
    Some([channel(0)?, channel(2)?, channel(4)?])
}

/// Relative luminance, WCAG 2.x definition.
fn luminance([r, g, b]: [u8; 3]) -> f64 {
    let linear = |c: u8| {
        let c = f64::from(c) / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b)
}

/// The contrast ratio of two `#rrggbb` colours (1 to 21), if both parse.
pub fn contrast(a: &str, b: &str) -> Option<f64> {
    let (la, lb) = (luminance(parse_hex(a)?), luminance(parse_hex(b)?));
    let (light, dark) = if la > lb { (la, lb) } else { (lb, la) };
    Some((light + 0.05) / (dark + 0.05))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_ratios() {
        let black_white = contrast("#000000", "#FFFFFF").unwrap();
        assert!((black_white - 21.0).abs() < 1e-9);
        assert!((contrast("#777777", "#ffffff").unwrap() - 4.48).abs() < 0.01);
        assert_eq!(contrast("#fff", "#000000"), None);
        assert_eq!(parse_hex("#12345g"), None);
    }

    #[test]
    fn shipped_colours_meet_wcag_aa() {
        for (name, colour) in [
            ("text", TEXT),
            ("hint", HINT),
            ("error", ERROR),
            ("accent (links; button text on it)", DEFAULT_ACCENT),
        ] {
            let ratio = contrast(colour, BACKGROUND).unwrap();
            assert!(ratio >= AA_TEXT, "{name} {colour}: {ratio:.2}");
        }
        // Borders and focus rings are non-text: 3:1.
        assert!(contrast(BORDER, BACKGROUND).unwrap() >= 3.0);
    }
}
