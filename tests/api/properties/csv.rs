//! CSV cells cannot start a formula, and read back as typed.

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Whatever a visitor typed, its CSV cell cannot start a formula, and a CSV reader
    /// gets the text back exactly (behind the one added `'`).
    #[test]
    fn csv_cells_are_neutralised_and_round_trip(cell in prop_oneof![
        any::<String>(),
        "[=+@\t\r\0-][ -~]{0,30}",
        "[\",\n\r a-z]{0,30}",
    ]) {
        let safe = joinform::export::neutralise(&cell);
        let first = safe.chars().next();
        prop_assert!(!matches!(first, Some('=' | '+' | '-' | '@' | '\t' | '\r' | '\0')));
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.write_record([safe.as_ref(), "next"]).unwrap();
        let bytes = writer.into_inner().unwrap();
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(bytes.as_slice());
        let record = reader.records().next().unwrap().unwrap();
        let expected = if safe.len() == cell.len() { cell.clone() } else { format!("'{cell}") };
        prop_assert_eq!(&record[0], expected.as_str());
        prop_assert_eq!(&record[1], "next");
    }
}
