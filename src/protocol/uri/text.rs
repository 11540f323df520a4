//! Text helpers for the parser: strict percent-decoding, and quoting of fragments in messages
//! that never quotes what may be a password.
//!
//! A password that is not percent-encoded can shift every boundary the grammar relies on: in
//! `mongodb://alice:pa/ss@host` the host list appears to be `alice:pa`, and in
//! `mongodb://alice:p?w=1@host` an option appears to be `w=1@host`. So an error cannot trust
//! the parse to know where the password is. [`Source`] takes the widest view instead: any text
//! from the first `:` after `//` up to the last `@` of the whole string may belong to a
//! password, and messages describe such text by position only. Strings without an `@` (no
//! user info at all) are quoted freely.

use std::borrow::Cow;
use std::ops::Range;

use crate::Error;

/// A usage error whose message starts with "invalid connection string: ".
pub(super) fn invalid(message: impl std::fmt::Display) -> Error {
    usage_error("invalid connection string", message)
}

/// How much of a fragment messages quote.
const QUOTED_CHARS: usize = 64;

/// What stands for text that is not shown; [`usage_error`] explains it once per message.
const HIDDEN: &str = "<bytes ";

fn usage_error(context: &str, problem: impl std::fmt::Display) -> Error {
    let problem = problem.to_string();
    let note = if problem.contains(HIDDEN) {
        "; <bytes a..b> stands for text not shown because it may be part of a password \
         (percent-encode ':', '/', '?', '@' and '%' in user names and passwords)"
    } else {
        ""
    };
    Error::usage(format!("{context}: {problem}{note}"))
}

/// The text being parsed (a connection string or a TXT record), the byte range that may hold
/// a password, and how its errors begin.
pub(super) struct Source<'a> {
    text: &'a str,
    secret: Option<Range<usize>>,
    context: String,
}

impl<'a> Source<'a> {
    /// A connection string whose user info, if any, starts at byte `userinfo_start`.
    pub(super) fn connection_string(text: &'a str, userinfo_start: usize) -> Source<'a> {
        let first_colon = text
            .get(userinfo_start..)
            .and_then(|rest| rest.find(':'))
            .map(|at| userinfo_start + at + 1);
        let secret = match (first_colon, text.rfind('@')) {
            (Some(start), Some(end)) if start <= end => Some(start..end),
            _ => None,
        };
        Source {
            text,
            secret,
            context: "invalid connection string".into(),
        }
    }

    /// Text that holds no password (a TXT record), quoted freely; errors begin with `context`.
    pub(super) fn plain(text: &'a str, context: String) -> Source<'a> {
        Source {
            text,
            secret: None,
            context,
        }
    }

    /// A usage error about this text.
    pub(super) fn invalid(&self, problem: impl std::fmt::Display) -> Error {
        usage_error(&self.context, problem)
    }

    /// The text in `range` (empty if `range` is not on character boundaries, which the parser,
    /// splitting only at ASCII delimiters, never produces).
    pub(super) fn get(&self, range: Range<usize>) -> &'a str {
        self.text.get(range).unwrap_or_default()
    }

    /// Whether `range` overlaps the text that may belong to a password.
    pub(super) fn may_hold_password(&self, range: &Range<usize>) -> bool {
        self.secret
            .as_ref()
            .is_some_and(|secret| range.start < secret.end && secret.start < range.end.max(range.start + 1))
    }

    /// The text in `range` as a quoted string (its start, if long), or where it is when it
    /// may hold a password.
    pub(super) fn quote(&self, range: Range<usize>) -> String {
        if self.may_hold_password(&range) {
            return hidden(&range);
        }
        let text = self.get(range);
        match text.char_indices().nth(QUOTED_CHARS) {
            Some((cut, _)) => format!("{:?}… ({} bytes)", text.get(..cut).unwrap_or_default(), text.len()),
            None => format!("{text:?}"),
        }
    }

    /// The text in `range` as it stands, or where it is when it may hold a password.
    pub(super) fn show(&self, range: Range<usize>) -> Cow<'a, str> {
        if self.may_hold_password(&range) {
            Cow::Owned(hidden(&range))
        } else {
            Cow::Borrowed(self.get(range))
        }
    }
}

fn hidden(range: &Range<usize>) -> String {
    format!("{HIDDEN}{}..{}>", range.start, range.end)
}

/// Why percent-decoding failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DecodeProblem {
    /// A `%` at this byte offset (within the decoded text) is not followed by two hex digits.
    BadEscape(usize),
    /// The decoded bytes are not UTF-8.
    NotUtf8,
}

/// Decodes `%XX` escapes, rejecting a `%` that does not start one (the Connection String spec
/// requires an error there rather than a literal `%`). `+` stays `+`: the spec only allows
/// decoding it to a space, and passwords contain `+` more often than connection strings
/// contain form-encoded spaces.
pub(super) fn percent_decode(raw: &str) -> Result<Cow<'_, str>, DecodeProblem> {
    if !raw.contains('%') {
        return Ok(Cow::Borrowed(raw));
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        if byte == b'%' {
            let high = bytes.get(at + 1).copied().and_then(hex_value);
            let low = bytes.get(at + 2).copied().and_then(hex_value);
            let (Some(high), Some(low)) = (high, low) else {
                return Err(DecodeProblem::BadEscape(at));
            };
            out.push(high << 4 | low);
            at += 3;
        } else {
            out.push(byte);
            at += 1;
        }
    }
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|_| DecodeProblem::NotUtf8)
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_escapes_of_either_case_and_keeps_plus() {
        assert_eq!(percent_decode("a%2Fb%2fc").unwrap(), "a/b/c");
        assert_eq!(percent_decode("x+y%20z").unwrap(), "x+y z");
        assert_eq!(percent_decode("b%C3%BCcher").unwrap(), "bücher");
        assert!(matches!(percent_decode("plain").unwrap(), Cow::Borrowed("plain")));
    }

    #[test]
    fn rejects_bad_escapes_with_their_offset() {
        assert_eq!(percent_decode("ab%"), Err(DecodeProblem::BadEscape(2)));
        assert_eq!(percent_decode("%4"), Err(DecodeProblem::BadEscape(0)));
        assert_eq!(percent_decode("user%20%"), Err(DecodeProblem::BadEscape(7)));
        assert_eq!(percent_decode("a%w1"), Err(DecodeProblem::BadEscape(1)));
        assert_eq!(percent_decode("%FF%FE"), Err(DecodeProblem::NotUtf8));
    }

    #[test]
    fn quotes_only_outside_the_possible_password() {
        let text = "mongodb://alice:s3cret@db:1/?appname=a@b";
        let source = Source::connection_string(text, 10);
        // From the first ':' after "//" to the last '@' (inside the appname).
        assert_eq!(source.secret, Some(16..38));
        assert_eq!(source.quote(10..15), "\"alice\"");
        assert_eq!(source.quote(16..22), "<bytes 16..22>");
        assert!(
            invalid(source.quote(16..22))
                .to_string()
                .ends_with("(percent-encode ':', '/', '?', '@' and '%' in user names and passwords)")
        );
        assert!(!invalid("\"db\"").to_string().contains("not shown"));
        assert!(!source.quote(23..27).contains("db"));
        assert_eq!(source.show(39..40), "b");
        let no_at = Source::connection_string("mongodb://db:1/?w=2", 10);
        assert_eq!(no_at.quote(10..14), "\"db:1\"");
        assert_eq!(
            Source::plain("replicaSet=a@b", String::new()).quote(0..10),
            "\"replicaSet\""
        );
    }
}
