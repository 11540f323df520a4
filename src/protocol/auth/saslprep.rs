//! SASLprep (RFC 4013), the stringprep (RFC 3454) profile SCRAM-SHA-256 applies to passwords.
//!
//! Written here on top of the `stringprep` crate's RFC 3454 tables rather than calling its
//! `saslprep`, because that function's error names the offending character, and an error about
//! a password must never quote any part of it. The errors below say which rule failed instead.
//!
//! Unassigned code points are prohibited (RFC 3454 treats them so for "stored strings"): the
//! server prepares SCRAM-SHA-256 passwords the same way when it creates the user, so a password
//! it accepted never contains one. Stringprep is pinned to Unicode 3.2, so characters assigned
//! later (emoji, for instance) count as unassigned on both sides.

use std::borrow::Cow;
use std::fmt;

use stringprep::tables;
use unicode_normalization::UnicodeNormalization;

/// Why a string could not be prepared. Never holds the string or any character of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SaslprepError {
    /// A character that RFC 4013 section 2.3 prohibits in the output, of this class.
    Prohibited(&'static str),
    /// A code point unassigned in Unicode 3.2 (RFC 3454 table A.1).
    Unassigned,
    /// Right-to-left text that breaks RFC 3454 section 6.
    Bidirectional,
    /// Nothing is left after mapping (RFC 5802 counts that as a failed normalization).
    Empty,
}

impl fmt::Display for SaslprepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SaslprepError::Prohibited(class) => {
                write!(f, "it contains a character SASLprep prohibits ({class})")
            }
            SaslprepError::Unassigned => f.write_str("it contains a code point unassigned in Unicode 3.2"),
            SaslprepError::Bidirectional => f.write_str(
                "it mixes right-to-left and left-to-right text, or right-to-left text does not \
                 both start and end it",
            ),
            SaslprepError::Empty => f.write_str("nothing is left of it after SASLprep mapping"),
        }
    }
}

/// Prepares `input` with SASLprep: map (non-ASCII spaces to a space, "commonly mapped to
/// nothing" characters removed), normalize to NFKC, reject prohibited output, check
/// bidirectional text, reject unassigned code points.
pub(crate) fn saslprep(input: &str) -> Result<Cow<'_, str>, SaslprepError> {
    // Printable ASCII maps to itself and is already NFKC, and most passwords are just that.
    if input.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return if input.is_empty() {
            Err(SaslprepError::Empty)
        } else {
            Ok(Cow::Borrowed(input))
        };
    }
    if input.chars().any(tables::unassigned_code_point) {
        return Err(SaslprepError::Unassigned);
    }

    // RFC 4013 section 2.1, mapping.
    let mapped = input
        .chars()
        .filter(|&c| !tables::commonly_mapped_to_nothing(c))
        .map(|c| if tables::non_ascii_space_character(c) { ' ' } else { c });
    // Section 2.2, normalization form KC.
    let prepared: String = mapped.nfkc().collect();
    if prepared.is_empty() {
        return Err(SaslprepError::Empty);
    }

    // Section 2.3, prohibited output.
    for c in prepared.chars() {
        if let Some(class) = prohibited_class(c) {
            return Err(SaslprepError::Prohibited(class));
        }
    }

    // Section 2.4, RFC 3454 section 6: a string with right-to-left characters must not contain
    // left-to-right ones, and must start and end with a right-to-left character.
    if prepared.chars().any(tables::bidi_r_or_al) {
        let starts = prepared.chars().next().is_some_and(tables::bidi_r_or_al);
        let ends = prepared.chars().next_back().is_some_and(tables::bidi_r_or_al);
        if prepared.chars().any(tables::bidi_l) || !starts || !ends {
            return Err(SaslprepError::Bidirectional);
        }
    }
    Ok(Cow::Owned(prepared))
}

/// A prohibition of RFC 4013 section 2.3: the RFC 3454 table and what it holds.
type Prohibition = (fn(char) -> bool, &'static str);

/// The RFC 3454 table that prohibits `c` in SASLprep output (RFC 4013 section 2.3), if any.
fn prohibited_class(c: char) -> Option<&'static str> {
    let checks: [Prohibition; 10] = [
        (tables::non_ascii_space_character, "non-ASCII space"),
        (tables::ascii_control_character, "ASCII control character"),
        (tables::non_ascii_control_character, "non-ASCII control character"),
        (tables::private_use, "private use character"),
        (tables::non_character_code_point, "non-character code point"),
        (tables::surrogate_code, "surrogate code point"),
        (
            tables::inappropriate_for_plain_text,
            "character inappropriate for plain text",
        ),
        (
            tables::inappropriate_for_canonical_representation,
            "character inappropriate for canonical representation",
        ),
        (
            tables::change_display_properties_or_deprecated,
            "display-changing or deprecated character",
        ),
        (tables::tagging_character, "tagging character"),
    ];
    checks
        .into_iter()
        .find(|(prohibits, _)| prohibits(c))
        .map(|(_, class)| class)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prepared(input: &str) -> Result<String, SaslprepError> {
        saslprep(input).map(Cow::into_owned)
    }

    /// The examples of RFC 4013 section 3.
    #[test]
    fn rfc4013_examples() {
        assert_eq!(prepared("I\u{00AD}X").as_deref(), Ok("IX")); // soft hyphen removed
        assert_eq!(prepared("user").as_deref(), Ok("user"));
        assert_eq!(prepared("USER").as_deref(), Ok("USER")); // case is kept
        assert_eq!(prepared("\u{00AA}").as_deref(), Ok("a")); // NFKC
        assert_eq!(prepared("\u{2168}").as_deref(), Ok("IX")); // NFKC
        assert_eq!(
            prepared("\u{0007}"),
            Err(SaslprepError::Prohibited("ASCII control character"))
        );
        assert_eq!(prepared("\u{0627}1"), Err(SaslprepError::Bidirectional));
    }

    /// The passwords of the Authentication spec's SASLprep prose test: each pair prepares to
    /// one string, so either form authenticates.
    #[test]
    fn roman_numerals_and_soft_hyphens() {
        assert_eq!(prepared("IX"), prepared("I\u{00AD}X"));
        assert_eq!(prepared("\u{2163}").as_deref(), Ok("IV")); // ROMAN NUMERAL FOUR
        assert_eq!(prepared("I\u{00AD}V").as_deref(), Ok("IV"));
    }

    #[test]
    fn ascii_is_borrowed_unchanged() {
        assert!(matches!(saslprep("pencil"), Ok(Cow::Borrowed("pencil"))));
        assert!(matches!(saslprep("a b~!"), Ok(Cow::Borrowed("a b~!"))));
    }

    #[test]
    fn spaces_and_invisible_characters_are_mapped() {
        assert_eq!(prepared("a\u{00A0}b\u{3000}c").as_deref(), Ok("a b c"));
        assert_eq!(prepared("pass\u{200B}word\u{FEFF}").as_deref(), Ok("password"));
        assert_eq!(prepared("ﬁ").as_deref(), Ok("fi")); // compatibility ligature
    }

    #[test]
    fn prohibited_characters_are_rejected() {
        let cases = [
            ("a\u{0085}", "non-ASCII control character"),
            ("a\u{E000}", "private use character"),
            ("a\u{FDD0}", "non-character code point"),
            ("a\u{FFFD}", "character inappropriate for plain text"),
            ("a\u{2FF0}", "character inappropriate for canonical representation"),
            ("a\u{200E}", "display-changing or deprecated character"),
            ("a\u{E0001}", "tagging character"),
            ("tab\tbed", "ASCII control character"),
        ];
        for (input, class) in cases {
            assert_eq!(prepared(input), Err(SaslprepError::Prohibited(class)), "{input:?}");
        }
    }

    #[test]
    fn right_to_left_text_must_be_consistent() {
        assert_eq!(prepared("\u{0627}\u{0628}").as_deref(), Ok("\u{0627}\u{0628}"));
        assert_eq!(prepared("\u{0627}1\u{0628}").as_deref(), Ok("\u{0627}1\u{0628}"));
        assert_eq!(prepared("\u{0627}a\u{0628}"), Err(SaslprepError::Bidirectional));
        assert_eq!(prepared("1\u{0627}"), Err(SaslprepError::Bidirectional));
    }

    #[test]
    fn unassigned_and_empty_are_rejected() {
        assert_eq!(prepared("a\u{0221}"), Err(SaslprepError::Unassigned));
        assert_eq!(prepared("\u{1F600}"), Err(SaslprepError::Unassigned));
        assert_eq!(prepared(""), Err(SaslprepError::Empty));
        assert_eq!(prepared("\u{00AD}\u{200B}"), Err(SaslprepError::Empty));
    }

    #[test]
    fn errors_never_quote_the_input() {
        for input in ["s3cr\u{0007}t", "s3cr\u{E000}t", "s3cr\u{0627}t", "s3cr\u{0221}t"] {
            let error = prepared(input).unwrap_err();
            let shown = format!("{error} {error:?}");
            assert!(!shown.contains("s3cr"), "{shown}");
            for c in input.chars().filter(|c| !c.is_ascii_alphanumeric()) {
                assert!(!shown.contains(c), "{shown}");
            }
        }
    }
}
