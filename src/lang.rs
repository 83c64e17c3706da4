//! The two languages Teller serves, and detection for text that does not say.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A customer-facing language. Tags follow BCP 47 as used in the knowledge base.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub enum Lang {
    #[serde(rename = "en")]
    En,
    #[serde(rename = "zh-CN")]
    ZhCn,
}

impl Lang {
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::ZhCn => "zh-CN",
        }
    }

    /// Detects English versus Simplified Chinese.
    ///
    /// Any Han character in a short customer message is a strong signal: Chinese customers
    /// mix in Latin product names and numbers, English customers almost never type Han.
    /// For longer text the share of Han characters decides, so an English page that quotes
    /// the bank's Chinese name stays English.
    pub fn detect(text: &str) -> Lang {
        let mut han = 0usize;
        let mut letters = 0usize;
        for c in text.chars() {
            if is_han(c) {
                han += 1;
            } else if c.is_alphabetic() {
                letters += 1;
            }
        }
        if han == 0 {
            return Lang::En;
        }
        // One Han character carries roughly the information of a short English word
        // (about four letters), so compare in those units.
        if han * 4 >= letters / 2 {
            Lang::ZhCn
        } else {
            Lang::En
        }
    }
}

/// True for CJK unified ideographs (the blocks used by Simplified Chinese text).
pub fn is_han(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x20000..=0x2A6DF | 0xF900..=0xFAFF)
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The tag was neither English nor Simplified Chinese.
#[derive(Debug, thiserror::Error)]
#[error("unsupported language {0:?}: expected \"en\" or \"zh-CN\"")]
pub struct UnsupportedLang(pub String);

/// Every tag [`Lang::from_str`] reads (in any ASCII case).
pub const ACCEPTED_TAGS: &[&str] = &[
    "en", "en-us", "en-gb", "english", "zh", "zh-cn", "zh-hans", "zh_cn", "chinese",
];

impl FromStr for Lang {
    type Err = UnsupportedLang;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "en" | "en-us" | "en-gb" | "english" => Ok(Lang::En),
            "zh" | "zh-cn" | "zh-hans" | "zh_cn" | "chinese" => Ok(Lang::ZhCn),
            _ => Err(UnsupportedLang(s.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accepted_tags_are_exactly_what_is_read() {
        for tag in ACCEPTED_TAGS {
            assert!(tag.parse::<Lang>().is_ok(), "{tag}");
            assert!(tag.to_ascii_uppercase().parse::<Lang>().is_ok(), "{tag}");
        }
        for other in ["", "fr", "en-", "zh-tw", "english "] {
            assert!(other.parse::<Lang>().is_err(), "{other}");
        }
    }

    #[test]
    fn detects_english_and_chinese() {
        assert_eq!(Lang::detect("how do I activate my card?"), Lang::En);
        assert_eq!(Lang::detect("那24期呢？"), Lang::ZhCn);
        assert_eq!(Lang::detect("信用卡 Gold Card 年费是多少"), Lang::ZhCn);
        assert_eq!(
            Lang::detect("Welcome to Harbourview Bank (港景银行), where your savings grow every day"),
            Lang::En
        );
        assert_eq!(Lang::detect("12345"), Lang::En);
    }

    #[test]
    fn parses_tags() {
        assert_eq!("zh-CN".parse::<Lang>().unwrap(), Lang::ZhCn);
        assert_eq!("EN".parse::<Lang>().unwrap(), Lang::En);
        assert!("fr".parse::<Lang>().is_err());
    }
}
