//! Input read up to a limit: attest files, audit exports line by line, trusted key files, and
//! hostile manifests refused quickly in bounded memory.

use floe_promotion_cli::exit;

use super::{LAYOUT_MANIFEST, no_state_written};
use crate::common::{self, Run, Workspace};

/// A sparse file of `len` bytes (zeros): large, but it takes no disk.
fn sparse_file(ws: &Workspace, name: &str, len: u64) -> String {
    let path = ws.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::File::create(&path).unwrap().set_len(len).unwrap();
    path.display().to_string()
}

/// Runs `args` under the memory limit in text and JSON mode: one line naming `file` and
/// `limit`, the same message as JSON, exit 2.
#[track_caller]
fn refused_at_limit(ws: &Workspace, args: &[&str], file: &str, limit: &str) {
    let line = ws.run_bounded(args).one_error_line(exit::USAGE);
    assert!(
        line.contains(file),
        "the error does not name {file}: {line}"
    );
    assert!(
        line.contains(&format!("{limit} limit")),
        "the error does not name the {limit} limit: {line}"
    );
    let mut json = vec!["--output", "json"];
    json.extend_from_slice(args);
    let doc = ws.run_bounded(&json).json_error(exit::USAGE);
    assert_eq!(format!("floe: {}", doc.error), line);
}

/// `attest --file` reads at most one byte past its 1 MiB limit, whatever size the file system
/// reports (a device reports 0).
#[test]
fn an_attest_file_is_read_up_to_its_limit() {
    let ws = Workspace::new(LAYOUT_MANIFEST);
    let big = sparse_file(&ws, "report.json", 2 * 1024 * 1024);
    for file in ["/dev/zero", big.as_str()] {
        refused_at_limit(
            &ws,
            &[
                "attest",
                "app:v1.0.0",
                "--env",
                "dev",
                "--kind",
                "tests",
                "--status",
                "passed",
                "--file",
                file,
            ],
            file,
            "1 MiB",
        );
    }
    no_state_written(&ws);
}

/// `audit verify --file` reads an export line by line, each line at most its limit: an endless
/// line (a device, a file without newlines) is refused at the limit, not read whole.
#[test]
fn audit_verify_reads_each_line_up_to_its_limit() {
    let ws = Workspace::new(LAYOUT_MANIFEST);
    let flat = ws.join("flat.jsonl");
    std::fs::write(&flat, vec![b'{'; 20 * 1024 * 1024]).unwrap();
    let flat = flat.display().to_string();
    for file in ["/dev/zero", flat.as_str()] {
        refused_at_limit(&ws, &["audit", "verify", "--file", file], file, "8 MiB");
        let line = ws
            .run_bounded(&["audit", "verify", "--file", file])
            .one_error_line(exit::USAGE);
        assert!(line.contains("line 1"), "{line}");
    }
    no_state_written(&ws);
}

/// A trusted key file is read up to its limit: a 200 MB file is refused after 64 KiB.
#[test]
fn a_huge_trusted_key_file_is_refused_at_its_limit() {
    let ws = Workspace::new(&LAYOUT_MANIFEST.replace(
        "  promotion:\n",
        "  promotion:\n    trusted_keys: [keys/huge.pub]\n",
    ));
    let key = sparse_file(&ws, "keys/huge.pub", 200 * 1024 * 1024);
    refused_at_limit(&ws, &["envs"], &key, "64 KiB");
    no_state_written(&ws);
}

/// Writes the hostile manifests into `dir`: (name, path). The loader's own test
/// (`floe-promotion/tests/manifest_fuzz.rs`) has more; these are the ones a user could hand
/// the command line.
fn hostile_manifests(dir: &std::path::Path) -> Vec<(&'static str, String)> {
    use std::io::Write;
    let mut files = Vec::new();
    let mut add = |name: &'static str, bytes: &[u8]| {
        let path = dir.join(format!("{name}.yaml"));
        std::fs::write(&path, bytes).unwrap();
        files.push((name, path.display().to_string()));
    };
    // Where the loader walks any value: `strategy: { direct: ... }`.
    let direct = "artifacts:\n  promotion:\n    environments:\n      - name: dev\n        strategy:\n          direct:";
    // "Billion laughs": ten levels of ten aliases, 10^10 strings expanded.
    let mut bomb = format!("{direct}\n            a: &a [{}]\n", ["lol"; 10].join(","));
    for (prev, next) in ('a'..='j').zip('b'..='k') {
        let refs = vec![format!("*{prev}"); 10].join(",");
        bomb.push_str(&format!("            {next}: &{next} [{refs}]\n"));
    }
    add("alias-bomb", bomb.as_bytes());
    add(
        "deep-nesting",
        format!("{direct} {}", "[".repeat(100_000)).as_bytes(),
    );
    add(
        "deep-maps",
        format!("{direct} {}", "{a: ".repeat(100_000)).as_bytes(),
    );
    add(
        "nul-bytes",
        LAYOUT_MANIFEST
            .replacen("name: dev", "name: d\0ev", 1)
            .as_bytes(),
    );
    add(
        "non-utf8",
        &[LAYOUT_MANIFEST.as_bytes(), b"# caf\xe9 \xff\n".as_slice()].concat(),
    );
    // 100 MB: a valid manifest followed by comment lines.
    let path = dir.join("huge.yaml");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    out.write_all(LAYOUT_MANIFEST.as_bytes()).unwrap();
    let line = format!("# {}\n", "x".repeat(1021));
    for _ in 0..(100 * 1024) {
        out.write_all(line.as_bytes()).unwrap();
    }
    out.flush().unwrap();
    files.push(("huge-100MB", path.display().to_string()));
    files.push(("device", "/dev/zero".to_string()));
    files
}

/// What GNU time measured of one run.
struct Measured {
    wall: std::time::Duration,
    /// User and system CPU time.
    cpu: std::time::Duration,
    /// The kernel's maximum resident set size of the process, in bytes.
    peak: u64,
}

/// Runs `floe ARGS` under GNU time (`/usr/bin/time`) in `ws`: the run and what it used.
fn run_measured(ws: &Workspace, args: &[&str]) -> (Run, Measured) {
    let report = ws.join("time.txt");
    let out = std::process::Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%e %U %S %M")
        .arg("-o")
        .arg(&report)
        .arg(common::FLOE)
        .args(args)
        .current_dir(ws.path())
        .stdin(std::process::Stdio::null())
        .env_remove("RUST_LOG")
        .env_remove("FLOE_MANIFEST")
        .env_remove("FLOE_STATE")
        .env("DOCKER_CONFIG", ws.join("no-docker-config"))
        .output()
        .expect("running floe under /usr/bin/time (scripts/registry-deps.sh installs it)");
    // GNU time writes "Command exited with non-zero status N" first when it did.
    let measured = std::fs::read_to_string(&report).unwrap();
    let mut fields = measured
        .lines()
        .last()
        .unwrap_or_default()
        .split_whitespace();
    let mut seconds =
        || std::time::Duration::from_secs_f64(fields.next().unwrap().parse().unwrap());
    let wall = seconds();
    let cpu = seconds() + seconds();
    let kib: u64 = fields.next().unwrap().parse().unwrap();
    let run = Run {
        code: u8::try_from(out.status.code().expect("floe was killed by a signal")).unwrap(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        args: args.iter().map(|s| s.to_string()).collect(),
    };
    (
        run,
        Measured {
            wall,
            cpu,
            peak: kib * 1024,
        },
    )
}

/// A YAML alias bomb, 100,000 nested `[` or `{`, NUL bytes, non-UTF-8 bytes, a 100 MB file
/// and an endless device as the manifest: `floe` refuses each within a second of CPU time
/// (and of wall time, with room for a machine busy with other tests: 3 s), with a peak
/// resident memory under 64 MiB, on one line naming the file (one JSON document with
/// `--output json`), and writes nothing.
#[test]
fn hostile_manifests_are_refused_quickly_in_bounded_memory() {
    let ws = Workspace::new(LAYOUT_MANIFEST);
    let dir = tempfile::tempdir().unwrap();
    let mut report = Vec::new();
    for (name, path) in hostile_manifests(dir.path()) {
        let (run, used) = run_measured(&ws, &["--manifest", &path, "envs"]);
        let line = run.one_error_line(exit::USAGE);
        assert!(
            line.contains(&path),
            "{name}: the file is not named: {line}"
        );
        let Measured { wall, cpu, peak } = used;
        assert!(
            cpu < std::time::Duration::from_secs(1),
            "{name} took {cpu:?} of CPU"
        );
        assert!(
            wall < std::time::Duration::from_secs(3),
            "{name} took {wall:?}"
        );
        assert!(peak < 64 * 1024 * 1024, "{name}: peak memory {peak} bytes");
        let (json, _) = run_measured(&ws, &["--output", "json", "--manifest", &path, "envs"]);
        let doc = json.json_error(exit::USAGE);
        assert_eq!(format!("floe: {}", doc.error), line);
        report.push(format!(
            "{name}: {wall:?} wall, {cpu:?} CPU, peak {:.1} MiB: {line}",
            peak as f64 / 1048576.0
        ));
    }
    println!("{}", report.join("\n"));
    no_state_written(&ws);
}
