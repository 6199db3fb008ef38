//! The checks of a [`SafetySettings`] (the configuration's `safety` section and the studio's
//! safety scan): an outlier threshold, when given, is a positive number; the replacement of
//! non-finite values is finite.

use super::{ConfigError, SafetySettings};

impl SafetySettings {
    /// Refuses settings a scan cannot use; the error names the field (`safety.replacement`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(t) = self.outlier_threshold {
            if !(t.is_finite() && t > 0.0) {
                return Err(ConfigError::Invalid {
                    path: "safety.outlier_threshold".into(),
                    message: format!("must be a positive number, got {t}"),
                });
            }
        }
        if !self.replacement.is_finite() {
            return Err(ConfigError::Invalid {
                path: "safety.replacement".into(),
                message: "must be a finite number".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_and_replacements_are_checked_naming_the_field() {
        assert!(SafetySettings::default().validate().is_ok());
        for (s, field) in [
            (
                SafetySettings {
                    outlier_threshold: Some(0.0),
                    ..SafetySettings::default()
                },
                "safety.outlier_threshold",
            ),
            (
                SafetySettings {
                    outlier_threshold: Some(f32::NAN),
                    ..SafetySettings::default()
                },
                "safety.outlier_threshold",
            ),
            (
                SafetySettings {
                    replacement: f32::INFINITY,
                    ..SafetySettings::default()
                },
                "safety.replacement",
            ),
        ] {
            let e = s.validate().unwrap_err().to_string();
            assert!(e.starts_with(field), "{e}");
        }
    }
}
