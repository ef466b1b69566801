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
}
