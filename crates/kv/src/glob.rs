//! Redis-style glob matching for KEYS and SCAN MATCH: `*`, `?`, `[abc]`, `[^a]`, `[a-z]` and
//! backslash escapes, with Redis's treatment of the odd cases (reversed ranges, an unterminated
//! class runs to the end of the pattern, a trailing backslash is a literal backslash).
//!
//! The matcher is iterative (no recursion on client input) and runs in O(pattern x subject) time:
//! only `*` matches a variable length, so remembering the last star is enough to backtrack.

/// True when `subject` matches the whole of `pattern`.
pub fn glob_match(pattern: &[u8], subject: &[u8]) -> bool {
    let (mut p, mut s) = (0usize, 0usize);
    // Where to resume after the most recent star: pattern index after it, subject index it covers to.
    let mut resume: Option<(usize, usize)> = None;
    while s < subject.len() {
        if pattern.get(p) == Some(&b'*') {
            while pattern.get(p) == Some(&b'*') {
                p += 1;
            }
            if p == pattern.len() {
                return true;
            }
            resume = Some((p, s));
            continue;
        }
        if p < pattern.len() {
            let (matched, next) = match_single(pattern, p, subject[s]);
            if matched {
                p = next;
                s += 1;
                continue;
            }
        }
        match resume {
            Some((star_p, star_s)) => {
                p = star_p;
                s = star_s + 1;
                resume = Some((star_p, star_s + 1));
            }
            None => return false,
        }
    }
    while pattern.get(p) == Some(&b'*') {
        p += 1;
    }
    p == pattern.len()
}

/// Match the single-byte token at `pattern[p]` (anything but `*`) against `c`; returns whether it
/// matched and where the next token starts.
fn match_single(pattern: &[u8], p: usize, c: u8) -> (bool, usize) {
    match pattern[p] {
        b'?' => (true, p + 1),
        b'\\' if p + 1 < pattern.len() => (pattern[p + 1] == c, p + 2),
        b'[' => match_class(pattern, p + 1, c),
        literal => (literal == c, p + 1),
    }
}

/// Match a bracket class whose body starts at `pattern[i]`.
fn match_class(pattern: &[u8], mut i: usize, c: u8) -> (bool, usize) {
    let negate = pattern.get(i) == Some(&b'^');
    if negate {
        i += 1;
    }
    let mut matched = false;
    while i < pattern.len() {
        let b = pattern[i];
        if b == b'\\' && i + 1 < pattern.len() {
            matched |= pattern[i + 1] == c;
            i += 2;
        } else if b == b']' {
            i += 1;
            return (matched != negate, i);
        } else if i + 2 < pattern.len() && pattern[i + 1] == b'-' {
            let (lo, hi) = (b.min(pattern[i + 2]), b.max(pattern[i + 2]));
            matched |= (lo..=hi).contains(&c);
            i += 3;
        } else {
            matched |= b == c;
            i += 1;
        }
    }
    // Unterminated class: Redis lets it run to the end of the pattern.
    (matched != negate, i)
}

/// The literal bytes every match of `pattern` starts with (used to narrow KEYS to a key range).
pub fn literal_prefix(pattern: &[u8]) -> Vec<u8> {
    let mut prefix = Vec::new();
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            b'*' | b'?' | b'[' => break,
            b'\\' if i + 1 < pattern.len() => {
                prefix.push(pattern[i + 1]);
                i += 2;
            }
            b => {
                prefix.push(b);
                i += 1;
            }
        }
    }
    prefix
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An independent recursive reference, written after Redis's `stringmatchlen` structure.
    fn reference(pattern: &[u8], subject: &[u8]) -> bool {
        if pattern.is_empty() {
            return subject.is_empty();
        }
        match pattern[0] {
            b'*' => (0..=subject.len()).any(|k| reference(&pattern[1..], &subject[k..])),
            _ if subject.is_empty() => false,
            b'?' => reference(&pattern[1..], &subject[1..]),
            b'\\' if pattern.len() >= 2 => {
                pattern[1] == subject[0] && reference(&pattern[2..], &subject[1..])
            }
            b'[' => {
                let body = &pattern[1..];
                let (negate, mut rest) = match body.first() {
                    Some(b'^') => (true, &body[1..]),
                    _ => (false, body),
                };
                let c = subject[0];
                let mut hit = false;
                loop {
                    match rest {
                        [] => break,
                        [b'\\', x, tail @ ..] => {
                            hit |= *x == c;
                            rest = tail;
                        }
                        [b']', tail @ ..] => {
                            rest = tail;
                            break;
                        }
                        [a, b'-', z, tail @ ..] => {
                            hit |= (*a.min(z)..=*a.max(z)).contains(&c);
                            rest = tail;
                        }
                        [x, tail @ ..] => {
                            hit |= *x == c;
                            rest = tail;
                        }
                    }
                }
                hit != negate && reference(rest, &subject[1..])
            }
            x => x == subject[0] && reference(&pattern[1..], &subject[1..]),
        }
    }

    #[test]
    fn redis_examples() {
        assert!(glob_match(b"h?llo", b"hello"));
        assert!(glob_match(b"h*llo", b"heeeello"));
        assert!(glob_match(b"h*llo", b"hllo"));
        assert!(glob_match(b"h[ae]llo", b"hallo"));
        assert!(!glob_match(b"h[ae]llo", b"hillo"));
        assert!(glob_match(b"h[^e]llo", b"hallo"));
        assert!(!glob_match(b"h[^e]llo", b"hello"));
        assert!(glob_match(b"h[a-b]llo", b"hbllo"));
        assert!(
            glob_match(b"h[b-a]llo", b"hallo"),
            "reversed ranges are swapped"
        );
        assert!(glob_match(b"h\\*llo", b"h*llo"));
        assert!(!glob_match(b"h\\*llo", b"hello"));
        assert!(glob_match(b"[\\]]", b"]"));
        assert!(
            glob_match(b"a\\", b"a\\"),
            "a trailing backslash is literal"
        );
        assert!(
            glob_match(b"[abc", b"b"),
            "an unterminated class runs to the end"
        );
        assert!(glob_match(b"*", b""));
        assert!(!glob_match(b"?", b""));
        assert!(glob_match(b"user:*:name", b"user:42:name"));
        assert!(!glob_match(b"user:*:name", b"user:42:mail"));
    }

    #[test]
    fn pathological_patterns_stay_linear_in_practice() {
        let pattern = b"a*a*a*a*a*a*a*a*a*a*a*a*b".to_vec();
        let subject = vec![b'a'; 10_000];
        assert!(!glob_match(&pattern, &subject));
    }

    #[test]
    fn literal_prefix_stops_at_wildcards() {
        assert_eq!(literal_prefix(b"user:\\*x*"), b"user:*x".to_vec());
        assert_eq!(literal_prefix(b"*"), Vec::<u8>::new());
        assert_eq!(literal_prefix(b"ab[c]"), b"ab".to_vec());
    }

    fn pattern_bytes() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![
                Just(b'a'),
                Just(b'b'),
                Just(b'*'),
                Just(b'?'),
                Just(b'['),
                Just(b']'),
                Just(b'^'),
                Just(b'-'),
                Just(b'\\')
            ],
            0..10,
        )
    }

    fn subject_bytes() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![
                Just(b'a'),
                Just(b'b'),
                Just(b'c'),
                Just(b'-'),
                Just(b']'),
                Just(b'\\')
            ],
            0..10,
        )
    }

    proptest! {
        #[test]
        fn agrees_with_the_recursive_reference(p in pattern_bytes(), s in subject_bytes()) {
            prop_assert_eq!(glob_match(&p, &s), reference(&p, &s), "pattern {:?} subject {:?}",
                String::from_utf8_lossy(&p), String::from_utf8_lossy(&s));
        }

        #[test]
        fn escaped_literals_match_only_themselves(a in subject_bytes(), b in subject_bytes()) {
            let escaped: Vec<u8> = a.iter().flat_map(|&c| [b'\\', c]).collect();
            prop_assert!(glob_match(&escaped, &a));
            prop_assert_eq!(glob_match(&escaped, &b), a == b);
        }

        #[test]
        fn prefix_star_is_starts_with(a in subject_bytes(), b in subject_bytes()) {
            let mut pattern: Vec<u8> = a.iter().flat_map(|&c| [b'\\', c]).collect();
            pattern.push(b'*');
            prop_assert_eq!(glob_match(&pattern, &b), b.starts_with(&a));
            prop_assert!(b.starts_with(&literal_prefix(&pattern)) || !glob_match(&pattern, &b));
        }
    }
}
