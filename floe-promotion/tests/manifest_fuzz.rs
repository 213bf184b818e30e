//! The manifest parser never panics: on arbitrary text, and on the sample manifest cut,
//! spliced and garbled.

use std::path::Path;

use floe_promotion::config::parse_manifest;
use proptest::prelude::*;

const SAMPLE: &str = include_str!("fixtures/manifests/manifest.yaml");

fn char_boundary(s: &str, i: usize) -> usize {
    (0..=i.min(s.len()))
        .rev()
        .find(|&j| s.is_char_boundary(j))
        .unwrap_or(0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        let _ = parse_manifest(&text, Some(Path::new("/cfg/manifest.yaml")));
    }

    #[test]
    fn yaml_like_text_never_panics(text in "[a-z_:{}\\[\\], \\-\\n\"'&*!|>#0-9.$]{0,200}") {
        let _ = parse_manifest(&text, None);
    }

    #[test]
    fn a_garbled_sample_never_panics(
        cut in 0usize..4096,
        at in 0usize..4096,
        insert in "[ -~\\n\\t]{0,12}",
        drop in 0usize..64,
    ) {
        let cut = char_boundary(SAMPLE, cut);
        let truncated = &SAMPLE[..cut];
        let _ = parse_manifest(truncated, None);

        let at = char_boundary(SAMPLE, at);
        let end = char_boundary(SAMPLE, at + drop).max(at);
        let spliced = format!("{}{}{}", &SAMPLE[..at], insert, &SAMPLE[end..]);
        let _ = parse_manifest(&spliced, Some(Path::new("m.yaml")));
    }
}

#[test]
fn the_sample_itself_parses() {
    // Guards the property tests above: they garble a manifest that is valid to begin with.
    parse_manifest(SAMPLE, None).unwrap();
}
