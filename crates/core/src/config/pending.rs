//! An import that is preview-then-apply: the previewed configuration kept under a token, so
//! that applying applies exactly what was previewed, once. A newer preview replaces an older.

use std::sync::atomic::{AtomicU32, Ordering};

use parking_lot::Mutex;

use super::Configuration;

/// A previewed configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    /// The token the preview returned.
    pub token: u32,
    /// Where it came from (a path, a preset name).
    pub source: String,
    /// The parsed configuration.
    pub config: Configuration,
    /// It is a shipped preset.
    pub preset: bool,
    /// The user's override for a configuration recorded on another model.
    pub allow_other_model: bool,
}

/// The token is not the current preview's (never given, replaced, or applied already).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("this preview is no longer current (preview the configuration again)")]
pub struct StalePreview;

/// The current preview, if any (one at a time).
#[derive(Debug, Default)]
pub struct PendingConfig {
    pending: Mutex<Option<Pending>>,
    next_token: AtomicU32,
}

impl PendingConfig {
    /// Keeps `config` as the current preview, replacing any older one; returns its token.
    pub fn keep(&self, source: String, config: Configuration, preset: bool) -> u32 {
        let token = self.next_token.fetch_add(1, Ordering::Relaxed) + 1;
        *self.pending.lock() = Some(Pending {
            token,
            source,
            config,
            preset,
            allow_other_model: false,
        });
        token
    }

    /// Turns the override on for preview `token`; returns its source and configuration.
    pub fn allow_other_model(&self, token: u32) -> Result<(String, Configuration), StalePreview> {
        let mut p = self.pending.lock();
        match p.as_mut() {
            Some(x) if x.token == token => {
                x.allow_other_model = true;
                Ok((x.source.clone(), x.config.clone()))
            }
            _ => Err(StalePreview),
        }
    }

    /// Takes preview `token` to apply it (it applies once).
    pub fn take(&self, token: u32) -> Result<Pending, StalePreview> {
        let mut p = self.pending.lock();
        match p.as_ref() {
            Some(x) if x.token == token => Ok(p.take().expect("checked")),
            _ => Err(StalePreview),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_preview_applies_once_and_only_while_current() {
        let log = PendingConfig::default();
        let t1 = log.keep("a".into(), Configuration::default(), false);
        let t2 = log.keep("b".into(), Configuration::default(), true);
        assert_eq!(
            log.take(t1),
            Err(StalePreview),
            "a newer preview replaces the older one"
        );
        assert_eq!(log.allow_other_model(t1), Err(StalePreview));
        assert_eq!(log.allow_other_model(t2).unwrap().0, "b");
        let p = log.take(t2).unwrap();
        assert!(p.preset && p.source == "b" && p.allow_other_model);
        assert_eq!(log.take(t2), Err(StalePreview), "a preview applies once");
    }
}
