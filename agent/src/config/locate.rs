//! Maps a problem in the config file back to its line: toml's error spans for syntax, type and
//! unknown-key errors, and a span-keeping parse (toml_edit) for values that parse but are invalid.

use toml_edit::{ImDocument, Item, Table, TableLike};

/// 1-based line of a byte offset in `text` (the last line when the offset is past the end).
pub fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    let prefix = text.get(..end).unwrap_or(text);
    prefix.bytes().filter(|b| *b == b'\n').count() + 1
}

/// 1-based line where the dotted key `path` (`store.flush_interval_ms`,
/// `alerts.endpoints.0.rpm_warning`, `ports.1`) is written in `text`. A key that is not written
/// (an inherited or default value) gives the line of its nearest written parent, e.g. the
/// `[[alerts.endpoints]]` header; None when no part of the path is in the file.
pub fn key_line(text: &str, path: &str) -> Option<usize> {
    let doc = ImDocument::parse(text).ok()?;
    let span = walk(&doc, path);
    span.map(|s| line_of(text, s.start))
}

/// Span of the deepest written part of `path`.
fn walk(doc: &ImDocument<&str>, path: &str) -> Option<std::ops::Range<usize>> {
    let mut node = Node::Table(doc.as_table());
    let mut span = None;
    for segment in path.split('.') {
        let Some(next) = step(node, segment, &mut span) else {
            return span;
        };
        node = next;
    }
    span
}

fn step<'a>(
    node: Node<'a>,
    segment: &str,
    span: &mut Option<std::ops::Range<usize>>,
) -> Option<Node<'a>> {
    {
        let node = match (node, segment.parse::<usize>()) {
            (Node::Item(Item::ArrayOfTables(tables)), Ok(index)) => {
                let table = tables.get(index)?;
                *span = table.span().or(span.take());
                Node::Table(table)
            }
            (Node::Item(item), Ok(index)) => {
                let value = item.as_array()?.get(index)?;
                *span = value.span().or(span.take());
                Node::Value
            }
            (node, _) => {
                let table = match node {
                    Node::Table(t) => t as &dyn TableLike,
                    Node::Item(item) => item.as_table_like()?,
                    Node::Value => return None,
                };
                let (key, value) = table.get_key_value(segment)?;
                *span = key.span().or(value.span()).or(span.take());
                Node::Item(value)
            }
        };
        Some(node)
    }
}

/// Where the walk of [`key_line`] stands.
#[derive(Clone, Copy)]
enum Node<'a> {
    Item(&'a Item),
    Table(&'a Table),
    Value,
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const DOC: &str = "listen = \"127.0.0.1:9464\"\n\n[store]\n# comment\nflush_interval_ms = 0\n\n[[alerts.endpoints]]\nendpoint = \"/a\"\n\n[[alerts.endpoints]]\nendpoint = \"/b\"\nrpm_warning = 9\n";

    #[rstest]
    #[case::top_level_key("listen", Some(1))]
    #[case::section_key("store.flush_interval_ms", Some(5))]
    #[case::array_of_tables_entry("alerts.endpoints.1.rpm_warning", Some(12))]
    #[case::unwritten_key_points_at_its_section("store.max_pending", Some(3))]
    #[case::unwritten_section("health.disk_free_warning_percent", None)]
    fn finds_the_line_of_a_key(#[case] path: &str, #[case] want: Option<usize>) {
        assert_eq!(key_line(DOC, path), want);
    }

    #[rstest]
    #[case::start(0, 1)]
    #[case::second_line(26, 2)]
    #[case::past_the_end(10_000, 13)]
    fn counts_lines_of_offsets(#[case] offset: usize, #[case] want: usize) {
        assert_eq!(line_of(DOC, offset), want);
    }
}
