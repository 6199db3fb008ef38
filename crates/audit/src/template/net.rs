//! Network addresses in template text: URLs, `www.` hosts, IPv4 addresses and host names
//! under common top-level domains. A chat template formats a conversation; an address in the
//! text it emits points the model (or a tool call it makes) somewhere.

const SCHEMES: &[&str] = &[
    "http://",
    "https://",
    "ftp://",
    "ftps://",
    "ws://",
    "wss://",
    "file://",
    "ssh://",
    "smb://",
    "sftp://",
    "gopher://",
    "ldap://",
    "telnet://",
];

const TLDS: &[&str] = &[
    "com", "net", "org", "io", "ru", "cn", "xyz", "top", "info", "biz", "ai", "app", "dev", "co",
    "me", "tk", "sh", "link", "click", "site", "online", "onion", "su", "cc", "ly", "gg",
];

fn is_host_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '.'
}

/// The first network address in `text`.
pub fn find(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let take_url = |start: usize| -> String {
        text[start..]
            .chars()
            .take_while(|c| !c.is_whitespace() && !matches!(c, '"' | '\'' | '<' | '>' | '`' | ')'))
            .take(120)
            .collect()
    };
    let mut best: Option<(usize, String)> = None;
    let mut consider = |at: usize, s: String| {
        if best.as_ref().is_none_or(|(b, _)| at < *b) {
            best = Some((at, s));
        }
    };
    for scheme in SCHEMES {
        if let Some(at) = lower.find(scheme) {
            consider(at, take_url(at));
        }
    }
    if let Some(at) = lower.find("www.") {
        let preceded = lower[..at].chars().next_back().is_some_and(is_host_char);
        if !preceded
            && lower[at + 4..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric())
        {
            consider(at, take_url(at));
        }
    }
    if let Some((at, ip)) = find_ipv4(text) {
        consider(at, ip);
    }
    if let Some((at, host)) = find_host(&lower) {
        consider(at, text[at..at + host.len()].to_string());
    }
    best.map(|(_, s)| s)
}

fn find_ipv4(text: &str) -> Option<(usize, String)> {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() && (i == 0 || !(b[i - 1].is_ascii_digit() || b[i - 1] == b'.')) {
            let mut j = i;
            let mut parts = 0;
            let mut ok = true;
            loop {
                let s = j;
                while j < b.len() && b[j].is_ascii_digit() && j - s < 4 {
                    j += 1;
                }
                let n = &text[s..j];
                if n.is_empty() || n.len() > 3 || n.parse::<u32>().map_or(true, |v| v > 255) {
                    ok = false;
                    break;
                }
                parts += 1;
                if parts == 4 || j >= b.len() || b[j] != b'.' {
                    break;
                }
                j += 1;
            }
            let bounded = j >= b.len()
                || !(b[j].is_ascii_digit()
                    || (b[j] == b'.' && b.get(j + 1).is_some_and(u8::is_ascii_digit)));
            if ok && parts == 4 && bounded {
                return Some((i, text[i..j].to_string()));
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    None
}

/// `name.tld` (with optional subdomains) under a common top-level domain.
fn find_host(lower: &str) -> Option<(usize, String)> {
    let b = lower.as_bytes();
    let mut start = 0;
    while start < b.len() {
        // A maximal run of host characters.
        if !is_host_char(b[start] as char) {
            start += 1;
            continue;
        }
        let mut end = start;
        while end < b.len() && is_host_char(b[end] as char) {
            end += 1;
        }
        let run = lower[start..end].trim_matches(|c| c == '.' || c == '-');
        let run_start = start + lower[start..end].find(run).unwrap_or(0);
        let labels: Vec<&str> = run.split('.').collect();
        if labels.len() >= 2
            && labels.iter().all(|l| !l.is_empty())
            && labels[..labels.len() - 1]
                .iter()
                .any(|l| l.bytes().any(|c| c.is_ascii_alphabetic()))
            && TLDS.contains(labels.last().unwrap_or(&""))
        {
            return Some((run_start, run.to_string()));
        }
        start = end;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::find;

    #[test]
    fn finds_addresses() {
        assert_eq!(
            find("see https://evil.example/x?a=1 now").as_deref(),
            Some("https://evil.example/x?a=1")
        );
        assert_eq!(find("call 10.0.0.7 please").as_deref(), Some("10.0.0.7"));
        assert_eq!(
            find("visit www.Example.org").as_deref(),
            Some("www.Example.org")
        );
        assert_eq!(find("mail x@exfil.ru").as_deref(), Some("exfil.ru"));
    }

    #[test]
    fn ignores_ordinary_template_text() {
        for s in [
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n",
            "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n",
            "Environment: ipython\nTools: brave_search, wolfram_alpha\n",
            "version 1.2.3 and 3.14 and 1.2.3.4.5",
            "<｜User｜>",
        ] {
            assert_eq!(find(s), None, "{s:?}");
        }
    }
}
