//! Secrets that never reach logs, errors, `/health` or MQTT: [`Secret`] (a password or key) and
//! [`SecretUrl`] (a URL that may carry credentials), and the one redaction rule for URLs,
//! [`redact_url`] / [`redact_urls`], which every error naming a camera source goes through.

use serde::{Deserialize, Serialize};

/// A password or key from the options. `Debug` and `Display` print `***`, so a config dumped into a log line
/// leaks nothing; the value is only reachable through [`Secret::expose`].
#[derive(Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret itself, for the one place that must send it (a broker login, a Noise handshake).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "***" })
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// A source URL from the options (a camera's `http://user:password@host/stream`). `Debug` and `Display` show
/// it through [`redact_url`]; the full URL is only reachable through [`SecretUrl::expose`], for the one
/// place that connects with it.
#[derive(Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct SecretUrl(String);

impl SecretUrl {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The URL with its credentials, for connecting.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL as it may be shown: see [`redact_url`].
    pub fn redacted(&self) -> String {
        redact_url(&self.0)
    }
}

impl From<&str> for SecretUrl {
    fn from(s: &str) -> Self {
        Self(s.to_string())
    }
}

impl From<String> for SecretUrl {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl std::fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

impl std::fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Query parameters whose values are shown: anything else in a query may be a credential
/// (`?user=admin&pwd=...`, `?token=...`), so its value is replaced by `***`.
const SHOWN_QUERY_KEYS: &[&str] = &[
    "action",
    "resolution",
    "fps",
    "channel",
    "subtype",
    "stream",
];

/// A URL as it may appear in a log, an error, `/health` or MQTT: the credentials (everything between
/// `scheme://` and the **last** `@`, so a password containing `/`, `?`, `#` or `@` is covered too) become
/// `user:***@` (or `***@` without a user), and query values other than a few harmless ones become `***`.
/// Anything not shaped like a URL (no `://`) is returned whole: it holds no URL credentials.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let (scheme, rest) = url.split_at(scheme_end + 3);
    let mut out = String::from(scheme);
    let rest = match rest.rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            match userinfo.split_once(':') {
                Some((user, _)) if !user.contains(['/', '?', '#']) => {
                    out.push_str(user);
                    out.push_str(":***@");
                }
                _ => out.push_str("***@"),
            }
            &rest[at + 1..]
        }
        None => rest,
    };
    let rest = rest.split('#').next().unwrap_or_default();
    match rest.split_once('?') {
        None => out.push_str(rest),
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            let params: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((k, v)) if SHOWN_QUERY_KEYS.contains(&k.to_ascii_lowercase().as_str()) => {
                        format!("{k}={v}")
                    }
                    Some((k, _)) => format!("{k}=***"),
                    None => p.to_string(),
                })
                .collect();
            out.push_str(&params.join("&"));
        }
    }
    out
}

/// `text` with every URL in it (a run of non-space characters containing `://`) passed through
/// [`redact_url`]: the last line of defence for messages that quote a URL.
pub fn redact_urls(text: &str) -> String {
    if !text.contains("://") {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.contains("://") {
            // Keep quoting around the URL ('...', "...", (...)) outside the redaction.
            let start = word.find(|c: char| c.is_ascii_alphanumeric()).unwrap_or(0);
            let end = word
                .rfind(|c: char| !matches!(c, '\'' | '"' | ')' | ',' | ';' | ']' | '>'))
                .map_or(word.len(), |i| i + 1)
                .max(start);
            out.push_str(&word[..start]);
            out.push_str(&redact_url(&word[start..end]));
            out.push_str(&word[end..]);
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_whitespace() {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(s.expose(), "hunter2");
        assert_eq!(format!("{:?}", Secret::default()), "\"\"");
    }

    #[test]
    fn urls_lose_their_credentials_whatever_the_password_holds() {
        let cases = [
            ("http://cam.local:81/stream", "http://cam.local:81/stream"),
            (
                "http://admin:hunter2@cam/stream",
                "http://admin:***@cam/stream",
            ),
            (
                "http://admin:pa/ss@cam/stream",
                "http://admin:***@cam/stream",
            ),
            (
                "https://admin:p@ss?w#rd@cam:443/x",
                "https://admin:***@cam:443/x",
            ),
            ("http://onlytoken@cam/", "http://***@cam/"),
            ("http://a/b:c@cam/", "http://***@cam/"),
            (
                "http://cam/cgi?action=stream&user=admin&pwd=hunter2",
                "http://cam/cgi?action=stream&user=***&pwd=***",
            ),
            ("/dev/video0", "/dev/video0"),
        ];
        for (url, want) in cases {
            assert_eq!(redact_url(url), want, "{url}");
            assert_eq!(format!("{}", SecretUrl::from(url)), want);
            assert_eq!(format!("{:?}", SecretUrl::from(url)), format!("{want:?}"));
        }
        assert_eq!(SecretUrl::from("http://a:b@c/").expose(), "http://a:b@c/");
    }

    #[test]
    fn urls_inside_messages_are_redacted() {
        assert_eq!(
            redact_urls("'https://admin:pa/ss@cam/x' is not an http:// URL (use http)"),
            "'https://admin:***@cam/x' is not an http:// URL (use http)"
        );
        assert_eq!(redact_urls("no url here"), "no url here");
    }
}
