//! Query-string parameters (`?camera=Front%20door&limit=20`), percent-decoded.

/// The decoded value of the first parameter `key`; `Err` when it is not valid percent-encoded UTF-8.
pub fn param(query: Option<&str>, key: &str) -> Result<Option<String>, String> {
    for pair in query.unwrap_or("").split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if decode(k).as_deref() == Ok(key) {
            return decode(v)
                .map(Some)
                .map_err(|e| format!("query parameter '{key}': {e}"));
        }
    }
    Ok(None)
}

/// Percent-decoding with `+` as space (HTML forms encode spaces that way).
fn decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                let byte = hex.and_then(|h| u8::from_str_radix(h, 16).ok());
                out.push(byte.ok_or("a '%' not followed by two hex digits")?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| "not valid UTF-8".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_and_plus() {
        let q = Some("camera=Front%20door&name=J%C3%B6rg+M&limit=5&flag");
        assert_eq!(param(q, "camera").unwrap().as_deref(), Some("Front door"));
        assert_eq!(param(q, "name").unwrap().as_deref(), Some("Jörg M"));
        assert_eq!(param(q, "limit").unwrap().as_deref(), Some("5"));
        assert_eq!(param(q, "flag").unwrap().as_deref(), Some(""));
        assert_eq!(param(q, "other").unwrap(), None);
        assert_eq!(param(None, "camera").unwrap(), None);
    }

    #[test]
    fn bad_escapes_are_errors_not_panics() {
        assert!(param(Some("name=%"), "name").is_err());
        assert!(param(Some("name=%zz"), "name").is_err());
        assert!(param(Some("name=%ff"), "name").is_err());
        assert!(param(Some("name=%e2%82"), "name").is_err());
    }
}
