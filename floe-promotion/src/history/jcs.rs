//! Checking that bytes are RFC 8785 (JCS) canonical JSON, without building a value.
//!
//! Producing canonical JSON is left to the `serde_jcs` crate; this only reads. Verifying a
//! history checks every stored event, so the check is one pass over the bytes with no
//! allocation in the common case (keys without escapes). It accepts exactly the outputs of a
//! JCS serialiser: no whitespace, object keys in strictly ascending UTF-16 order (so no
//! duplicates), strings escaped only where JCS escapes them, numbers in ECMAScript's shortest
//! form. Equivalence with `serde_jcs` is tested below.

use std::borrow::Cow;
use std::cmp::Ordering;

/// Nesting deeper than this is refused (as serde_json refuses it when parsing).
const MAX_DEPTH: usize = 128;

/// Why bytes are not canonical: the byte offset and what was expected there.
pub(crate) type NotCanonical = (usize, &'static str);

/// Checks that `bytes` are one JSON value in JCS canonical form.
pub(crate) fn check(bytes: &[u8]) -> Result<(), NotCanonical> {
    check_top(bytes).map(drop)
}

/// The top-level integer members `seq` and `format`, seen while checking.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Top {
    pub(crate) seq: Option<u64>,
    pub(crate) format: Option<u64>,
}

/// [`check`], also returning the top-level `seq` and `format` when they are integers, so that
/// reading them costs no second pass.
pub(crate) fn check_top(bytes: &[u8]) -> Result<Top, NotCanonical> {
    let text = std::str::from_utf8(bytes).map_err(|e| (e.valid_up_to(), "UTF-8"))?;
    let mut p = Reader {
        s: text.as_bytes(),
        text,
        i: 0,
        top: Top::default(),
    };
    p.value(0)?;
    if p.i != p.s.len() {
        return Err((p.i, "the end after one value"));
    }
    Ok(p.top)
}

struct Reader<'a> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
    top: Top,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, b: u8, what: &'static str) -> Result<(), NotCanonical> {
        if self.peek() == Some(b) {
            self.i += 1;
            Ok(())
        } else {
            Err((self.i, what))
        }
    }

    fn literal(&mut self, word: &'static str) -> Result<(), NotCanonical> {
        if self.s[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Ok(())
        } else {
            Err((self.i, "a literal"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<(), NotCanonical> {
        if depth > MAX_DEPTH {
            return Err((self.i, "less nesting"));
        }
        match self.peek() {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string().map(drop),
            Some(b't') => self.literal("true"),
            Some(b'f') => self.literal("false"),
            Some(b'n') => self.literal("null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err((self.i, "a value")),
        }
    }

    fn object(&mut self, depth: usize) -> Result<(), NotCanonical> {
        self.i += 1;
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(());
        }
        let mut previous: Option<Cow<'a, str>> = None;
        loop {
            let at = self.i;
            let key = self.string()?;
            if let Some(prev) = &previous
                && utf16_cmp(prev, &key) != Ordering::Less
            {
                return Err((at, "keys in ascending UTF-16 order, without duplicates"));
            }
            self.eat(b':', "a colon without whitespace")?;
            let value_at = self.i;
            self.value(depth + 1)?;
            if depth == 0 && matches!(&*key, "seq" | "format") {
                let n = self.text[value_at..self.i].parse::<u64>().ok();
                match &*key {
                    "seq" => self.top.seq = n,
                    _ => self.top.format = n,
                }
            }
            previous = Some(key);
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err((self.i, "a comma or the end of the object")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<(), NotCanonical> {
        self.i += 1;
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.value(depth + 1)?;
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err((self.i, "a comma or the end of the array")),
            }
        }
    }

    /// A string with only the escapes JCS writes; returns its decoded text.
    fn string(&mut self) -> Result<Cow<'a, str>, NotCanonical> {
        self.eat(b'"', "a string")?;
        let start = self.i;
        let mut decoded: Option<String> = None;
        loop {
            let at = self.i;
            let Some(b) = self.peek() else {
                return Err((at, "the end of the string"));
            };
            match b {
                b'"' => {
                    self.i += 1;
                    return Ok(match decoded {
                        Some(d) => Cow::Owned(d),
                        None => Cow::Borrowed(&self.text[start..at]),
                    });
                }
                0x00..=0x1f => return Err((at, "an escaped control character")),
                b'\\' => {
                    let c = match self.s.get(at + 1) {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'b') => '\u{8}',
                        Some(b't') => '\t',
                        Some(b'n') => '\n',
                        Some(b'f') => '\u{c}',
                        Some(b'r') => '\r',
                        Some(b'u') => {
                            // Only control characters without a short form are written as
                            // \u00xx, in lower-case hex.
                            let hex = self.s.get(at + 2..at + 6).unwrap_or_default();
                            let v = match hex {
                                [
                                    b'0',
                                    b'0',
                                    h @ (b'0' | b'1'),
                                    l @ (b'0'..=b'9' | b'a'..=b'f'),
                                ] => {
                                    let l = if l.is_ascii_digit() {
                                        l - b'0'
                                    } else {
                                        l - b'a' + 10
                                    };
                                    (h - b'0') * 16 + l
                                }
                                _ => return Err((at, "no \\u escape but of a control character")),
                            };
                            if matches!(v, 0x08 | 0x09 | 0x0a | 0x0c | 0x0d) {
                                return Err((at, "the short escape of this control character"));
                            }
                            self.i += 4;
                            char::from(v)
                        }
                        _ => return Err((at, "no escape but of \", \\ or a control character")),
                    };
                    decoded
                        .get_or_insert_with(|| self.text[start..at].to_string())
                        .push(c);
                    self.i += 2;
                }
                _ => {
                    // Copy a run of plain characters (UTF-8 continuation bytes included).
                    let run = self.s[at..]
                        .iter()
                        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
                        .unwrap_or(self.s.len() - at);
                    if let Some(d) = decoded.as_mut() {
                        d.push_str(&self.text[at..at + run]);
                    }
                    self.i += run;
                }
            }
        }
    }

    /// A number in ECMAScript's `Number.prototype.toString` form of its double value.
    fn number(&mut self) -> Result<(), NotCanonical> {
        let start = self.i;
        let end = self.s[start..]
            .iter()
            .position(|c| !matches!(c, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'))
            .map_or(self.s.len(), |n| start + n);
        let token = &self.text[start..end];
        // An integer below 10^15 (exact in a double) is canonical when it has no sign but a
        // leading minus, no leading zero, and is not minus zero.
        let digits = token.strip_prefix('-').unwrap_or(token);
        if !digits.is_empty()
            && digits.len() <= 15
            && digits.bytes().all(|c| c.is_ascii_digit())
            && (digits == "0" || !digits.starts_with('0'))
            && token != "-0"
        {
            self.i = end;
            return Ok(());
        }
        let value: f64 = token.parse().map_err(|_| (start, "a number"))?;
        // Integers, the common case, are canonical when they print the same (and are exact).
        let canonical = if value.is_finite() {
            serde_jcs::to_string(&value).ok()
        } else {
            None
        };
        if canonical.as_deref() != Some(token) || !valid_json_number(token) {
            return Err((start, "a number in shortest ECMAScript form"));
        }
        self.i = end;
        Ok(())
    }
}

/// Whether `token` follows JSON's number grammar (Rust's float parser accepts more).
fn valid_json_number(token: &str) -> bool {
    let t = token.strip_prefix('-').unwrap_or(token).as_bytes();
    let digits = t.iter().take_while(|c| c.is_ascii_digit()).count();
    !(digits == 0 || (digits > 1 && t[0] == b'0'))
}

/// Orders two strings by their UTF-16 code units, as JCS sorts object keys.
pub(crate) fn utf16_cmp(a: &str, b: &str) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        return a.cmp(b);
    }
    a.encode_utf16().cmp(b.encode_utf16())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;

    fn jcs(v: &Value) -> String {
        serde_jcs::to_string(v).expect("canonicalise")
    }

    #[test]
    fn rfc_8785_section_3_2_3_example_is_canonical_and_its_input_is_not() {
        // RFC 8785, 3.2.3 (sorting of properties): the input, and the order JCS gives it.
        let input = r#"{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"}"#;
        let v: Value = serde_json::from_str(input).expect("json");
        let out = jcs(&v);
        let keys: Vec<&str> = v
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys.len(), 7);
        let expected_order = [
            "\r",
            "1",
            "\u{80}",
            "\u{f6}",
            "\u{20ac}",
            "\u{1f600}",
            "\u{fb33}",
        ];
        let positions: Vec<usize> = expected_order
            .iter()
            .map(|k| {
                out.find(&serde_json::to_string(k).expect("key"))
                    .expect("key present")
            })
            .collect();
        let sorted = {
            let mut p = positions.clone();
            p.sort();
            p
        };
        assert_eq!(positions, sorted, "{out}");
        assert_eq!(check(out.as_bytes()), Ok(()));
        assert!(check(input.as_bytes()).is_err());
    }

    #[test]
    fn rfc_8785_appendix_b_numbers() {
        for (bits, text) in [
            (0x0000_0000_0000_0000_u64, "0"),
            (0x0000_0000_0000_0001, "5e-324"),
            (0x7fef_ffff_ffff_ffff, "1.7976931348623157e+308"),
            (0x4340_0000_0000_0000, "9007199254740992"),
            (0x4430_0000_0000_0000, "295147905179352830000"),
            (0x44b5_2d02_c7e1_4af6, "1e+23"),
            (0x3eb0_c6f7_a0b5_ed8d, "0.000001"),
            (0x3eb0_c6f7_a0b5_ed8c, "9.999999999999997e-7"),
            (0x41b3_de43_5555_5554, "333333333.33333325"),
            (0xbecb_f647_612f_3696, "-0.0000033333333333333333"),
        ] {
            assert_eq!(jcs(&serde_json::json!(f64::from_bits(bits))), text);
            assert_eq!(check(text.as_bytes()), Ok(()), "{text}");
        }
        for bad in [
            "-0",
            "1.0",
            "1e2",
            "01",
            "1E+23",
            "0.0000010",
            "+1",
            "1.",
            ".5",
            "100e-2",
        ] {
            assert!(check(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn rfc_8785_appendix_e_example() {
        let input = r#"{
  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}"#;
        let expected = r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#;
        let v: Value = serde_json::from_str(input).expect("json");
        assert_eq!(jcs(&v), expected);
        assert_eq!(check(expected.as_bytes()), Ok(()));
        assert!(check(input.as_bytes()).is_err());
    }

    #[test]
    fn the_top_level_seq_and_format_are_read_while_checking() {
        assert_eq!(
            check_top(br#"{"a":{"seq":9},"format":2,"seq":12}"#),
            Ok(Top {
                seq: Some(12),
                format: Some(2)
            })
        );
        assert_eq!(
            check_top(br#"{"format":"2","seq":1.5}"#),
            Ok(Top::default())
        );
    }

    #[test]
    fn non_canonical_forms_are_refused() {
        for bad in [
            r#"{"b":1,"a":2}"#,
            r#"{"a":1,"a":2}"#,
            r#"{"a": 1}"#,
            r#" {"a":1}"#,
            r#"{"a":1} "#,
            r#"{"a":"\/"}"#,
            r#"{"a":"\u0041"}"#,
            r#"{"a":"\u000A"}"#,
            r#"{"a":"\u000a"}"#,
            r#"{"a":"\u001F"}"#,
            r#"{"a":"\u007f"}"#,
            "{\"a\":\"\u{1}\"}",
            r#"{"a":[1,]}"#,
            r#"{"a":tru}"#,
            r#"{"a":1}{"#,
            r#"["#,
        ] {
            assert!(check(bad.as_bytes()).is_err(), "{bad}");
        }
        for good in [
            "{\"a\":\"\\u001f\\b\\t\\n\\f\\r\\\"\\\\/\u{7f}\"}",
            "{\"a\":\"\u{7f}\u{2028}é😀\"}",
            r#"{"":[],"a":{},"b":[{}],"c":-1.5}"#,
            r#"{"\u0001":1,"\u0002":2}"#,
        ] {
            assert_eq!(check(good.as_bytes()), Ok(()), "{good}");
        }
    }

    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            "\\PC{0,8}|[\u{0}-\u{1f}\"\\\\/\u{e000}-\u{ffff}\u{10000}-\u{10ffff}]{0,4}"
                .prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(
                    "[a-c\u{80}\u{e000}\u{ffff}\u{10000}\u{10ffff}\u{1}\"]{0,3}",
                    inner,
                    0..6
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// What serde_jcs writes is canonical; compact serde_json output is canonical exactly
        /// when it equals serde_jcs's output.
        #[test]
        fn agrees_with_serde_jcs(v in json()) {
            let canonical = jcs(&v);
            prop_assert_eq!(check(canonical.as_bytes()), Ok(()), "{}", canonical);
            let plain = serde_json::to_string(&v).expect("json");
            prop_assert_eq!(check(plain.as_bytes()).is_ok(), plain == canonical, "{} vs {}", plain, canonical);
            let pretty = serde_json::to_string_pretty(&v).expect("json");
            prop_assert_eq!(check(pretty.as_bytes()).is_ok(), pretty == canonical);
        }
    }
}
