//! A missing or malformed manifest is named with its file, line and column.

use floe_promotion_cli::exit;

use super::no_state_written;
use crate::common::Workspace;

#[test]
fn missing_manifest_names_the_file() {
    let ws = Workspace::new("");
    std::fs::remove_file(ws.join("manifest.yaml")).unwrap();
    let line = ws.run(&["status"]).one_error_line(exit::USAGE);
    assert!(line.contains("manifest.yaml"), "{line}");
    let line = ws
        .run(&["--manifest", "nowhere/floe.yaml", "envs"])
        .one_error_line(exit::USAGE);
    assert!(line.contains("nowhere/floe.yaml"), "{line}");
    ws.run(&["--output", "json", "status"])
        .json_error(exit::USAGE);
    // A directory is not a manifest.
    std::fs::create_dir(ws.join("manifest.yaml")).unwrap();
    let line = ws.run(&["status"]).one_error_line(exit::USAGE);
    assert!(line.contains("manifest.yaml"), "{line}");
    no_state_written(&ws);
}

#[test]
fn malformed_manifest_gives_file_line_and_column() {
    let cases = [
        // Unclosed flow sequence.
        (
            "artifacts:\n  promotion:\n    environments:\n      - name: dev\n        repository: [oops\n",
            "manifest.yaml:5:",
        ),
        // A typo in a key.
        (
            "artifacts:\n  promotion:\n    environments:\n      - name: dev\n        repositroy: r.example.com/x\n",
            "manifest.yaml:5:9:",
        ),
        // A bad value.
        (
            "artifacts:\n  promotion:\n    environments:\n      - name: dev\n      - name: \"pr od\"\n",
            "manifest.yaml:5:15:",
        ),
        // Wrong indentation.
        (
            "artifacts:\n  promotion:\n   environments:\n      - name: dev\n     - name: prod\n",
            "manifest.yaml:5:",
        ),
    ];
    for (yaml, location) in cases {
        let ws = Workspace::new(yaml);
        let line = ws.run(&["envs"]).one_error_line(exit::USAGE);
        assert!(line.starts_with(&format!("floe: {location}")), "{line}");
        let doc = ws
            .run(&["--output", "json", "envs"])
            .json_error(exit::USAGE);
        assert!(doc.error.starts_with(location), "{doc:?}");
        no_state_written(&ws);
    }
    let ws = Workspace::new(
        "artifacts:\n  promotion:\n    environments:\n      - name: dev\n        repositroy: x/y\n",
    );
    let line = ws.run(&["envs"]).one_error_line(exit::USAGE);
    assert!(line.contains("repositroy"), "{line}");
}
