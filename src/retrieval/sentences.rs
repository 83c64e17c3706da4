//! A passage's text as sentences: prose split at sentence ends, list items and table
//! rows one sentence each. What the grounding measure and extractive answers compare with
//! a question.

use crate::knowledge::chunk::is_table_rule;
use crate::lang::is_han;

/// Splits a passage into sentences and list items, keeping each one's own text. A table
/// row is one sentence that names its cells by the table's header ("Platinum — 2-year
/// fixed plan: 3.43%"): a bare row of figures means nothing to a customer.
pub fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let mut header: Option<Vec<&str>> = None;
    for (i, raw) in lines.iter().enumerate() {
        if let Some(cells) = table_cells(raw) {
            if is_table_rule(raw) {
                continue;
            }
            if lines.get(i + 1).is_some_and(|next| is_table_rule(next)) {
                header = Some(cells);
                continue;
            }
            push_sentence(&mut out, &table_row(&cells, header.as_deref()));
            continue;
        }
        header = None;
        let line = strip_list_marker(raw);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut current = String::new();
        let chars: Vec<char> = line.chars().collect();
        for (i, &c) in chars.iter().enumerate() {
            current.push(c);
            let ends = match c {
                '。' | '！' | '？' | '；' => true,
                '.' | '!' | '?' => {
                    // A full stop ends a sentence only before a space and a capital or
                    // digit: "HVD 1.95%" and "e.g. cards" stay whole.
                    let next = chars.get(i + 1);
                    let after = chars.get(i + 2);
                    next.is_none_or(|n| n.is_whitespace())
                        && after.is_none_or(|a| a.is_uppercase() || a.is_ascii_digit() || !a.is_ascii())
                        && !current.trim_end().ends_with("e.g.")
                        && !current.trim_end().ends_with("i.e.")
                }
                _ => false,
            };
            if ends {
                push_sentence(&mut out, &current);
                current.clear();
            }
        }
        push_sentence(&mut out, &current);
    }
    out
}

/// The cells of a Markdown table line (`| a | b |`), or `None` for any other line.
fn table_cells(line: &str) -> Option<Vec<&str>> {
    let inner = line.strip_prefix('|')?;
    let inner = inner.strip_suffix('|').unwrap_or(inner);
    Some(inner.split('|').map(str::trim).collect())
}

/// A row as text under a header: "label: value" for two columns (a list of features),
/// "label — heading: value; heading: value" for more; the cells as written without one.
fn table_row(cells: &[&str], header: Option<&[&str]>) -> String {
    let Some(header) = header.filter(|h| h.len() == cells.len() && cells.len() >= 2) else {
        return cells.join(" | ");
    };
    // Chinese punctuation for a Chinese table only: "Prime − 2.00%" is not Chinese.
    let wide = cells.iter().chain(header).any(|c| c.chars().any(is_han));
    let (colon, semicolon, dash) = if wide {
        ("：", "；", "——")
    } else {
        (": ", "; ", " — ")
    };
    if cells.len() == 2 {
        return format!("{}{colon}{}", cells[0], cells[1]);
    }
    let values = header[1..]
        .iter()
        .zip(&cells[1..])
        .filter(|(_, value)| !value.is_empty())
        .map(|(name, value)| format!("{name}{colon}{value}"))
        .collect::<Vec<_>>()
        .join(semicolon);
    format!("{}{dash}{values}", cells[0])
}

/// `- item`, `* item`, `• item`, `1. item`, `2) item` → `item` (but `**bold**` stays).
fn strip_list_marker(line: &str) -> &str {
    if !line.starts_with("**") {
        let unbulleted = line.trim_start_matches(['-', '*', '•']);
        if unbulleted.len() != line.len() {
            return unbulleted.trim_start();
        }
    }
    let digits = line.chars().take_while(char::is_ascii_digit).count();
    match line[digits..].strip_prefix(['.', ')']) {
        Some(rest) if (1..=2).contains(&digits) && rest.starts_with(' ') => rest.trim_start(),
        _ => line,
    }
}

fn push_sentence(out: &mut Vec<String>, s: &str) {
    let s = s.trim();
    if s.chars().filter(|c| c.is_alphanumeric()).count() >= 2 {
        out.push(s.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_sentences_without_breaking_numbers() {
        let text = "The fee is 1.95% of the amount. Cards, e.g. Gold, are free.\n- Item one\n2. Step two\n**Bold.** Text\n| Gold | HVD 600 |\n消费分期。二十四期？";
        let expected = [
            "The fee is 1.95% of the amount.",
            "Cards, e.g. Gold, are free.",
            "Item one",
            "Step two",
            "**Bold.** Text",
            "Gold | HVD 600",
            "消费分期。",
            "二十四期？",
        ];
        assert_eq!(sentences(text), expected);
    }

    #[test]
    fn table_rows_name_their_cells_by_the_header() {
        let text = "Rates by rating:\n| HGBL rating | HVIBOR plan | 2-year fixed plan |\n|---|---|---|\n| Platinum | HVIBOR + 1.05% | 3.43% |\n| Gold | HVIBOR + 1.10% | |\n\n| 期限 | 利率 |\n|:--|--:|\n| 12期 | 0.50% |";
        assert_eq!(
            sentences(text),
            [
                "Rates by rating:",
                "Platinum — HVIBOR plan: HVIBOR + 1.05%; 2-year fixed plan: 3.43%",
                "Gold — HVIBOR plan: HVIBOR + 1.10%",
                "12期：0.50%",
            ]
        );
    }
}
