//! Argument strings: the kernel passes one space-separated string (program name not included).

/// The words of `args`, skipping repeated spaces.
pub fn words(args: &str) -> impl Iterator<Item = &str> {
    args.split(' ').filter(|w| !w.is_empty())
}

/// The first word and the rest of the string after it (trimmed).
pub fn split_first(text: &str) -> (&str, &str) {
    let text = text.trim_matches(' ');
    match text.find(' ') {
        Some(at) => (&text[..at], text[at..].trim_start_matches(' ')),
        None => (text, ""),
    }
}

/// Parses a decimal integer with an optional leading `-`.
pub fn parse_int(word: &str) -> Option<i64> {
    let (negative, digits) = match word.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, word),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut value: i64 = 0;
    for b in digits.bytes() {
        value = value.checked_mul(10)?.checked_add(i64::from(b - b'0'))?;
    }
    Some(if negative { -value } else { value })
}

/// A count from an optional argument word: `default` if it is absent or not a number, 0 for a
/// negative number.
pub fn count_or(word: Option<&str>, default: u64) -> u64 {
    word.and_then(parse_int)
        .map_or(default, |value| value.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_words() {
        let all: Vec<&str> = words("  spin  A 30 &").collect();
        assert_eq!(all, ["spin", "A", "30", "&"]);
        assert_eq!(split_first("run  spin A 3"), ("run", "spin A 3"));
        assert_eq!(split_first("ps"), ("ps", ""));
        assert_eq!(split_first(""), ("", ""));
    }

    #[test]
    fn parses_integers() {
        assert_eq!(parse_int("42"), Some(42));
        assert_eq!(parse_int("-11"), Some(-11));
        assert_eq!(parse_int("4x"), None);
        assert_eq!(parse_int("-"), None);
        assert_eq!(parse_int("99999999999999999999"), None);
    }

    #[test]
    fn counts_default_and_clamp() {
        assert_eq!(count_or(Some("7"), 3), 7);
        assert_eq!(count_or(Some("-7"), 3), 0);
        assert_eq!(count_or(Some("x"), 3), 3);
        assert_eq!(count_or(Some(""), 3), 3);
        assert_eq!(count_or(None, 3), 3);
    }
}
