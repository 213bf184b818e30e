//! A chain written by the first release (audit format 1), committed as a JSON Lines export
//! made by `floe audit export`, must verify with every later release: new fields and new
//! hashing formats may never break old chains.

use floe_promotion::history::verify_export;

/// The head hash `floe audit verify` printed when the fixture was made.
const HEAD: &str = "f5f7154f37cab2b9852ea2ab2d12caf2577e40c15a9774831884fff1deccf16e";

fn fixture() -> &'static [u8] {
    include_bytes!("fixtures/format1-chain.jsonl")
}

#[test]
fn the_format_1_export_verifies() {
    let report = verify_export(fixture(), true).unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.events, 13);
    assert_eq!(report.head.as_deref(), Some(HEAD));
}

#[test]
fn an_edit_of_the_format_1_export_is_detected() {
    let text = std::str::from_utf8(fixture()).unwrap();
    let edited = text.replacen("\"actor\":{\"id\":\"ops\"", "\"actor\":{\"id\":\"eve\"", 1);
    assert_ne!(edited, text, "the fixture has an event by ops");
    let report = verify_export(edited.as_bytes(), true).unwrap();
    assert!(!report.is_intact(), "{report:?}");
}
