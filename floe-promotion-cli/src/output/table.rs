//! Text tables sized to their content (comfy-table): a long actor or version widens its
//! column instead of pushing the rest of the row out of line.

use std::fmt::Write as _;

use comfy_table::{ContentArrangement, Table, presets};

/// Writes `rows` under `header` (when given) as aligned columns separated by two spaces,
/// each line prefixed with `indent`, without trailing spaces. Cells are shown as given: the
/// caller makes them printable.
pub(super) fn write_table(
    out: &mut String,
    indent: &str,
    header: Option<&[&str]>,
    rows: impl IntoIterator<Item = Vec<String>>,
) {
    let mut table = Table::new();
    table
        .load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled);
    if let Some(header) = header {
        table.set_header(header.iter().copied());
    }
    let mut any = false;
    for row in rows {
        table.add_row(row);
        any = true;
    }
    if !any && header.is_none() {
        return;
    }
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    for line in table.lines() {
        let _ = writeln!(out, "{indent}{}", line.trim_end());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_grow_with_their_widest_cell() {
        let mut out = String::new();
        let long = "an-actor-with-a-very-long-name@example.com".to_string();
        write_table(
            &mut out,
            "",
            Some(&["ENV", "BY", "TAGS"]),
            [
                vec!["dev".into(), long.clone(), "v1-dev".into()],
                vec!["prod".into(), "ci".into(), "v1-prod".into()],
            ],
        );
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        // Every row's third column starts at the same offset, after the long name.
        let starts: Vec<usize> = lines
            .iter()
            .zip(["TAGS", "v1-dev", "v1-prod"])
            .map(|(l, cell)| l.find(cell).expect(cell))
            .collect();
        assert!(starts.iter().all(|s| *s == starts[0]), "{out}");
        assert!(starts[0] >= "prod  ".len() + long.len() + 2, "{out}");
        assert!(lines.iter().all(|l| !l.ends_with(' ')), "{out:?}");
    }

    #[test]
    fn an_indent_prefixes_every_line_and_no_rows_write_nothing() {
        let mut out = String::new();
        write_table(&mut out, "  ", None, [vec!["gate".into(), "passed".into()]]);
        assert_eq!(out, "  gate  passed\n");
        let mut empty = String::new();
        write_table(&mut empty, "  ", None, Vec::<Vec<String>>::new());
        assert!(empty.is_empty());
    }
}
