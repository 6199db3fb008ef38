//! Invisible and bidirectional characters: text a person reviewing a template does not see,
//! or sees in another order than the model reads it.

use crate::Severity;

/// What kind of hidden character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Reorders the text on screen (Trojan Source): embeddings, overrides, isolates, marks.
    Bidi,
    /// Unicode tag characters (U+E0000–U+E007F): invisible ASCII, how text is smuggled past
    /// a reviewer to a model that reads it.
    Tag,
    /// Zero-width and other invisible characters, variation selectors, control characters.
    Invisible,
}

impl Class {
    /// The severity of a character of this class in a chat template.
    pub fn severity(self) -> Severity {
        match self {
            Class::Bidi | Class::Tag => Severity::Error,
            Class::Invisible => Severity::Warning,
        }
    }

    /// The finding code in a chat template.
    pub fn code(self) -> &'static str {
        match self {
            Class::Bidi => "template-bidi",
            Class::Tag => "template-tag-chars",
            Class::Invisible => "template-invisible",
        }
    }

    /// The finding code in descriptive metadata.
    pub fn code_for_metadata(self) -> &'static str {
        match self {
            Class::Bidi => "metadata-bidi",
            Class::Tag => "metadata-tag-chars",
            Class::Invisible => "metadata-invisible",
        }
    }
}

/// A run of hidden characters of one class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// Byte offset of the first character in the string.
    pub byte: usize,
    /// 1-based line and column (in characters) of the first character.
    pub line: u32,
    /// See `line`.
    pub column: u32,
    /// The characters of the run.
    pub chars: Vec<char>,
    /// Their class.
    pub class: Class,
}

impl Hit {
    /// `2 characters U+202E RIGHT-TO-LEFT OVERRIDE, …` and, for tag characters, the ASCII
    /// they hide.
    pub fn describe(&self) -> String {
        let mut names: Vec<String> = Vec::new();
        for c in &self.chars {
            let n = format!("U+{:04X} {}", *c as u32, name(*c));
            if !names.contains(&n) {
                names.push(n);
            }
            if names.len() == 4 {
                break;
            }
        }
        let count = self.chars.len();
        let what = match self.class {
            Class::Bidi => "bidirectional control",
            Class::Tag => "tag character",
            Class::Invisible => "invisible character",
        };
        let plural = if count == 1 { "" } else { "s" };
        let mut s = format!("{count} {what}{plural} ({})", names.join(", "));
        if self.class == Class::Tag {
            let hidden: String = self
                .chars
                .iter()
                .filter_map(|&c| {
                    let v = c as u32;
                    (0xE0020..=0xE007E)
                        .contains(&v)
                        .then(|| char::from_u32(v - 0xE0000))
                        .flatten()
                })
                .collect();
            if !hidden.is_empty() {
                s.push_str(&format!(" hiding the text {hidden:?}"));
            }
        }
        s
    }
}

/// The class of a character, if it is hidden.
pub fn class_of(c: char) -> Option<Class> {
    let v = c as u32;
    Some(match v {
        0x202A..=0x202E | 0x2066..=0x2069 | 0x200E | 0x200F | 0x061C => Class::Bidi,
        0xE0000..=0xE007F => Class::Tag,
        0x200B..=0x200D
        | 0x2060..=0x2064
        | 0xFEFF
        | 0x00AD
        | 0x180E
        | 0x034F
        | 0x115F
        | 0x1160
        | 0x3164
        | 0xFFA0
        | 0x17B4
        | 0x17B5
        | 0xFE00..=0xFE0F
        | 0xE0100..=0xE01EF
        | 0x2028
        | 0x2029 => Class::Invisible,
        // C0/C1 controls other than tab, newline and carriage return.
        0x00..=0x08 | 0x0B | 0x0C | 0x0E..=0x1F | 0x7F..=0x9F => Class::Invisible,
        _ => return None,
    })
}

fn name(c: char) -> &'static str {
    match c as u32 {
        0x202A => "LEFT-TO-RIGHT EMBEDDING",
        0x202B => "RIGHT-TO-LEFT EMBEDDING",
        0x202C => "POP DIRECTIONAL FORMATTING",
        0x202D => "LEFT-TO-RIGHT OVERRIDE",
        0x202E => "RIGHT-TO-LEFT OVERRIDE",
        0x2066 => "LEFT-TO-RIGHT ISOLATE",
        0x2067 => "RIGHT-TO-LEFT ISOLATE",
        0x2068 => "FIRST STRONG ISOLATE",
        0x2069 => "POP DIRECTIONAL ISOLATE",
        0x200E => "LEFT-TO-RIGHT MARK",
        0x200F => "RIGHT-TO-LEFT MARK",
        0x061C => "ARABIC LETTER MARK",
        0x200B => "ZERO WIDTH SPACE",
        0x200C => "ZERO WIDTH NON-JOINER",
        0x200D => "ZERO WIDTH JOINER",
        0x2060 => "WORD JOINER",
        0x2061..=0x2064 => "INVISIBLE OPERATOR",
        0xFEFF => "ZERO WIDTH NO-BREAK SPACE",
        0x00AD => "SOFT HYPHEN",
        0x180E => "MONGOLIAN VOWEL SEPARATOR",
        0x034F => "COMBINING GRAPHEME JOINER",
        0x115F | 0x1160 | 0x3164 | 0xFFA0 => "HANGUL FILLER",
        0x17B4 | 0x17B5 => "KHMER INHERENT VOWEL",
        0xFE00..=0xFE0F | 0xE0100..=0xE01EF => "VARIATION SELECTOR",
        0x2028 => "LINE SEPARATOR",
        0x2029 => "PARAGRAPH SEPARATOR",
        0xE0000..=0xE007F => "TAG",
        _ => "CONTROL",
    }
}

/// Every run of hidden characters in `s`, in order.
pub fn scan(s: &str) -> Vec<Hit> {
    let mut out: Vec<Hit> = Vec::new();
    let (mut line, mut column) = (1u32, 1u32);
    let mut prev_end: Option<usize> = None;
    for (byte, c) in s.char_indices() {
        if let Some(class) = class_of(c) {
            match out.last_mut() {
                Some(h) if h.class == class && prev_end == Some(byte) => h.chars.push(c),
                _ => out.push(Hit {
                    byte,
                    line,
                    column,
                    chars: vec![c],
                    class,
                }),
            }
            prev_end = Some(byte + c.len_utf8());
        }
        if c == '\n' {
            line = line.saturating_add(1);
            column = 1;
        } else {
            column = column.saturating_add(1);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_merged_and_tags_decoded() {
        let hidden: String = "hi"
            .chars()
            .map(|c| char::from_u32(0xE0000 + c as u32).unwrap())
            .collect();
        let s = format!("a\u{202E}\u{202E}b\n{hidden}");
        let hits = scan(&s);
        assert_eq!(hits.len(), 2, "{hits:?}");
        assert_eq!(hits[0].chars.len(), 2);
        assert_eq!((hits[0].line, hits[0].column), (1, 2));
        assert_eq!(hits[1].class, Class::Tag);
        assert_eq!((hits[1].line, hits[1].column), (2, 1));
        assert!(
            hits[1].describe().contains("\"hi\""),
            "{}",
            hits[1].describe()
        );
    }

    #[test]
    fn ordinary_text_has_no_hits() {
        assert!(scan("<|im_start|>user\n¿Qué? 日本語 <｜User｜> ▁\t").is_empty());
    }
}
