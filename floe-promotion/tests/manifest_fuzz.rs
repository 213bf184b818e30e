//! Fuzz target: the manifest loader. It never panics: on arbitrary text, on the sample
//! manifest cut, spliced and garbled, and on the sample with whole lines dropped, repeated,
//! swapped, re-indented or given hostile values. Hostile files (an alias bomb, 100 MB, deep
//! nesting, NUL and non-UTF-8 bytes) are refused within a second and in bounded memory, with
//! one line naming the file.
//!
//! CI runs 256 cases per property; run longer with
//! `PROPTEST_CASES=100000 cargo test -p floe-promotion --test manifest_fuzz`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use floe_promotion::config::{load_manifest, parse_manifest};
use proptest::prelude::*;

const SAMPLE: &str = include_str!("fixtures/manifests/manifest.yaml");

fn char_boundary(s: &str, i: usize) -> usize {
    (0..=i.min(s.len()))
        .rev()
        .find(|&j| s.is_char_boundary(j))
        .unwrap_or(0)
}

/// One change to the sample's lines.
#[derive(Clone, Debug)]
enum LineEdit {
    Drop(usize),
    Repeat(usize),
    Swap(usize, usize),
    Indent(usize, usize),
    Dedent(usize),
    /// Replaces the value after the line's first `: ` (or the whole line).
    Value(usize, String),
}

fn line_edit() -> impl Strategy<Value = LineEdit> {
    let value = prop_oneof![
        Just("*missing".to_string()),
        Just("&a [*a]".to_string()),
        Just("!!binary AAAA".to_string()),
        Just("{ {: } }".to_string()),
        Just("[".to_string()),
        Just("-1".to_string()),
        Just("18446744073709551616".to_string()),
        Just("1e999".to_string()),
        Just("~".to_string()),
        Just("\"\\u0000\"".to_string()),
        Just("'$(id)'".to_string()),
        Just("[; rm -rf /]".to_string()),
        Just("../../etc/passwd".to_string()),
        Just("oci-layout:".to_string()),
        Just("<<: *x".to_string()),
        "\\PC{0,16}",
        "[ -~]{0,16}",
    ];
    prop_oneof![
        (0usize..80).prop_map(LineEdit::Drop),
        (0usize..80).prop_map(LineEdit::Repeat),
        (0usize..80, 0usize..80).prop_map(|(a, b)| LineEdit::Swap(a, b)),
        (0usize..80, 1usize..5).prop_map(|(a, n)| LineEdit::Indent(a, n)),
        (0usize..80).prop_map(LineEdit::Dedent),
        (0usize..80, value).prop_map(|(a, v)| LineEdit::Value(a, v)),
    ]
}

fn apply(lines: &mut Vec<String>, edit: &LineEdit) {
    let n = lines.len();
    match edit.clone() {
        LineEdit::Drop(i) => {
            lines.remove(i % n);
        }
        LineEdit::Repeat(i) => lines.insert(i % n, lines[i % n].clone()),
        LineEdit::Swap(a, b) => lines.swap(a % n, b % n),
        LineEdit::Indent(i, k) => lines[i % n].insert_str(0, &" ".repeat(k)),
        LineEdit::Dedent(i) => {
            let l = &mut lines[i % n];
            let trimmed = l.trim_start().to_string();
            *l = trimmed;
        }
        LineEdit::Value(i, v) => {
            let l = &mut lines[i % n];
            *l = match l.split_once(": ") {
                Some((key, _)) => format!("{key}: {v}"),
                None => v,
            };
        }
    }
}

/// Proptest's configuration: `PROPTEST_CASES` cases (256 unless set).
fn config() -> ProptestConfig {
    ProptestConfig::default()
}

proptest! {
    #![proptest_config(config())]

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

    /// Structured mutations: whole lines dropped, repeated, swapped, re-indented or given
    /// hostile values. An accepted manifest is refused or accepted the same way again, and a
    /// refusal is one line naming the file.
    #[test]
    fn an_edited_sample_never_panics(edits in proptest::collection::vec(line_edit(), 1..6)) {
        let mut lines: Vec<String> = SAMPLE.lines().map(str::to_string).collect();
        for edit in &edits {
            apply(&mut lines, edit);
        }
        let text = lines.join("\n");
        match parse_manifest(&text, Some(Path::new("/cfg/edited.yaml"))) {
            Ok(_) => prop_assert!(parse_manifest(&text, None).is_ok()),
            Err(e) => {
                let message = e.to_string();
                prop_assert!(!message.contains('\n'), "{message}");
                prop_assert!(message.contains("/cfg/edited.yaml"), "{message}");
            }
        }
    }
}

#[test]
fn the_sample_itself_parses() {
    // Guards the property tests above: they garble a manifest that is valid to begin with.
    parse_manifest(SAMPLE, None).unwrap();
}

/// A small valid manifest (no files it names need to exist).
const VALID: &str = "artifacts:\n  promotion:\n    environments:\n      - name: dev\n        repository: oci-layout:./dev\n      - name: prod\n        repository: oci-layout:./prod\n";

/// Writes the hostile manifests into `dir`: (name, path).
fn hostile_files(dir: &Path) -> Vec<(&'static str, PathBuf)> {
    let mut files = Vec::new();
    let mut add = |name: &'static str, bytes: &[u8]| {
        let path = dir.join(format!("{name}.yaml"));
        std::fs::write(&path, bytes).unwrap();
        files.push((name, path));
    };
    // "Billion laughs": ten levels of ten aliases each, 10^10 strings when expanded, where
    // the loader walks whatever it is given (`strategy: { direct: ... }` takes any value).
    let mut bomb = String::from(
        "artifacts:\n  promotion:\n    environments:\n      - name: dev\n        strategy:\n          direct:\n            a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for (prev, next) in ('a'..='j').zip('b'..='k') {
        let refs = vec![format!("*{prev}"); 10].join(",");
        bomb.push_str(&format!("            {next}: &{next} [{refs}]\n"));
    }
    add("alias-bomb", bomb.as_bytes());
    // The same, with mappings, and the aliases used again further down.
    let mut maps = String::from(
        "artifacts:\n  promotion:\n    environments:\n      - name: dev\n        strategy:\n          direct:\n            x0: &x0 {a: lol, b: lol, c: lol, d: lol}\n",
    );
    for i in 1..=24 {
        maps.push_str(&format!(
            "            x{i}: &x{i} {{a: *x{p}, b: *x{p}, c: *x{p}, d: *x{p}}}\n",
            p = i - 1
        ));
    }
    maps.push_str("      - name: prod\n        strategy: { direct: [*x24, *x24, *x24] }\n");
    add("alias-bomb-maps", maps.as_bytes());
    // An alias bomb where the manifest's own structure is expected.
    let mut typed = String::from("x0: &x0 {name: dev, repository: r}\n");
    for i in 1..=20 {
        typed.push_str(&format!(
            "x{i}: &x{i} [*x{p}, *x{p}, *x{p}, *x{p}]\n",
            p = i - 1
        ));
    }
    typed.push_str("artifacts:\n  promotion:\n    environments: *x20\n");
    add("alias-bomb-typed", typed.as_bytes());
    add(
        "deep-flow",
        format!("artifacts: {}", "[".repeat(100_000)).as_bytes(),
    );
    add(
        "deep-flow-maps",
        format!("artifacts: {}", "{a: ".repeat(100_000)).as_bytes(),
    );
    // Where the loader walks whatever it is given.
    let direct = "artifacts:\n  promotion:\n    environments:\n      - name: dev\n        strategy:\n          direct: ";
    add(
        "deep-flow-walked",
        format!("{direct}{}", "[".repeat(100_000)).as_bytes(),
    );
    add(
        "deep-flow-maps-walked",
        format!("{direct}{}", "{a: ".repeat(100_000)).as_bytes(),
    );
    let mut block = String::from(direct);
    block.push('\n');
    for depth in 0..2_000 {
        block.push_str(&" ".repeat(12 + depth));
        block.push_str("- \n");
    }
    add("deep-block", block.as_bytes());
    add("nul-start", &[b"\0".as_slice(), VALID.as_bytes()].concat());
    add(
        "nul-value",
        VALID.replacen("name: dev", "name: d\0ev", 1).as_bytes(),
    );
    add("nul-only", &[0u8; 4096]);
    add(
        "non-utf8",
        &[VALID.as_bytes(), b"# caf\xe9 \xff\xfe\n".as_slice()].concat(),
    );
    add(
        "utf16",
        &[
            b"\xff\xfe".as_slice(),
            &VALID
                .encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect::<Vec<u8>>(),
        ]
        .concat(),
    );
    // 100 MB: a valid manifest followed by comment lines.
    let path = dir.join("huge.yaml");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    out.write_all(VALID.as_bytes()).unwrap();
    let line = format!("# {}\n", "x".repeat(1021));
    for _ in 0..(100 * 1024) {
        out.write_all(line.as_bytes()).unwrap();
    }
    out.flush().unwrap();
    files.push(("huge-100MB", path));
    files
}

/// The environment variable that makes this test binary the child that loads one file.
const CHILD: &str = "FLOE_FUZZ_HOSTILE_MANIFEST";

/// The peak resident memory of this process so far (`VmHWM`), in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1024
}

/// Each hostile file is refused by `load_manifest` within a second and with a peak resident
/// memory under 64 MiB for the whole process, with one line naming the file. Each load runs
/// in a child process (this test binary again) so that its peak memory is its own.
#[test]
fn hostile_manifests_are_refused_quickly_in_bounded_memory() {
    if let Ok(path) = std::env::var(CHILD) {
        // The child: load, then report time, peak memory and the error.
        let started = Instant::now();
        let result = load_manifest(Path::new(&path));
        let elapsed = started.elapsed();
        let error = match result {
            Ok(_) => "ACCEPTED".to_string(),
            Err(e) => e.to_string(),
        };
        println!(
            "HOSTILE-RESULT {} {} {}",
            elapsed.as_micros(),
            peak_rss(),
            error.replace('\n', "\\n")
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let files = hostile_files(dir.path());
    let mut report = Vec::new();
    for (name, path) in &files {
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "hostile_manifests_are_refused_quickly_in_bounded_memory",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, path)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{name}: the child failed: {:?}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let line = stdout
            .lines()
            .find_map(|l| l.split_once("HOSTILE-RESULT ").map(|(_, r)| r))
            .unwrap_or_else(|| panic!("{name}: no result from the child:\n{stdout}"));
        let mut parts = line.splitn(3, ' ');
        let micros: u64 = parts.next().unwrap().parse().unwrap();
        let peak: u64 = parts.next().unwrap().parse().unwrap();
        let error = parts.next().unwrap();
        let elapsed = Duration::from_micros(micros);
        let line = format!(
            "{name}: {elapsed:?}, peak {:.1} MiB: {error}",
            peak as f64 / 1048576.0
        );
        println!("{line}");
        report.push(line);
        assert_ne!(error, "ACCEPTED", "{name} was accepted");
        assert!(!error.contains("\\n"), "{name}: not one line: {error}");
        assert!(
            error.contains(&path.display().to_string()),
            "{name}: the error does not name the file: {error}"
        );
        assert!(elapsed < Duration::from_secs(1), "{name} took {elapsed:?}");
        assert!(peak < 64 * 1024 * 1024, "{name}: peak memory {peak} bytes");
    }
    assert_eq!(report.len(), files.len());
}
