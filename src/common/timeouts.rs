//! The `timeouts` attribute: `timeouts = { create = "20m", delete = "10m" }`, durations in Go's
//! syntax (`90s`, `10m`, `1h30m`) like every Terraform provider's.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tfplugin::{Attribute, AttributePath, Diagnostic, Diagnostics, Nesting, Result, Value};

/// Configured timeouts; each one null means "the resource's default".
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Timeouts {
    /// For create (including the wait for readiness).
    #[serde(default)]
    pub create: Value<String>,
    /// For update (including upgrades and the wait for readiness).
    #[serde(default)]
    pub update: Value<String>,
    /// For delete (teardown until the resource is gone).
    #[serde(default)]
    pub delete: Value<String>,
}

/// The schema of `timeouts`, documenting each default.
pub fn attribute(create: Duration, update: Duration, delete: Duration) -> Attribute {
    let one = |name: &str, d: Duration| {
        Attribute::string(name).optional().description(format!(
            "How long to wait for {name}, e.g. `30s`, `10m`, `1h30m`. Default `{}`.",
            format_duration(d)
        ))
    };
    Attribute::nested(
        "timeouts",
        Nesting::Single,
        vec![
            one("create", create),
            one("update", update),
            one("delete", delete),
        ],
    )
    .optional()
    .description("Time limits for the operations of this resource (waits included).")
}

impl Timeouts {
    /// Checks every configured duration, with the attribute path in the error.
    pub fn validate(timeouts: &Value<Timeouts>) -> Result<()> {
        let Value::Known(t) = timeouts else {
            return Ok(());
        };
        let mut diags = Diagnostics::new();
        for (name, v) in [
            ("create", &t.create),
            ("update", &t.update),
            ("delete", &t.delete),
        ] {
            if let Value::Known(text) = v {
                if let Err(e) = parse_duration(text) {
                    diags.push(
                        Diagnostic::error("Invalid timeout", e)
                            .at(AttributePath::new("timeouts").attr(name)),
                    );
                }
            }
        }
        diags.into_result()
    }

    /// The duration for `op` ("create", "update" or "delete"), or `default`.
    pub fn get(timeouts: &Value<Timeouts>, op: &str, default: Duration) -> Duration {
        let Value::Known(t) = timeouts else {
            return default;
        };
        let v = match op {
            "create" => &t.create,
            "update" => &t.update,
            _ => &t.delete,
        };
        match v {
            Value::Known(text) => parse_duration(text).unwrap_or(default),
            _ => default,
        }
    }
}

/// Parses `1h30m`, `90s`, `2m30s`, `500ms` (Go's `time.ParseDuration` units h, m, s, ms).
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let bad = || {
        format!(
            "{text:?} is not a duration: use a number and a unit, e.g. \"30s\", \"10m\", \"1h30m\""
        )
    };
    let s = text.trim();
    if s.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let number: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let seconds = match unit {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return Err(bad()),
        };
        total += Duration::from_secs_f64(number * seconds);
    }
    if total.is_zero() {
        return Err(format!("{text:?}: a timeout must be longer than zero"));
    }
    Ok(total)
}

/// `1h30m0s`-style rendering for documentation.
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// Runs `work` within `limit`; running out names the operation and the `timeouts` attribute.
pub async fn bounded<T>(
    limit: Duration,
    action: &str,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(limit, work).await {
        Ok(r) => r,
        Err(_) => Err(Diagnostic::error(
            "Timed out",
            format!(
                "Gave up {action} after {}. Raise the matching `timeouts` value if Omni needs \
                 longer.",
                format_duration(limit)
            ),
        )
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_style_durations_parse() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1.5m").unwrap(), Duration::from_secs(90));
        for bad in ["", "10", "m", "10x", "0s", "-5m"] {
            assert!(parse_duration(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn invalid_timeouts_point_at_the_attribute() {
        let t = Value::Known(Timeouts {
            create: Value::Known("soon".into()),
            ..Default::default()
        });
        let err = Timeouts::validate(&t).unwrap_err();
        assert_eq!(
            err.0[0].path,
            Some(AttributePath::new("timeouts").attr("create"))
        );
        assert_eq!(
            Timeouts::get(&t, "delete", Duration::from_secs(7)),
            Duration::from_secs(7)
        );
    }

    #[test]
    fn durations_render_for_docs() {
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_secs(45)), "45s");
    }

    #[tokio::test]
    async fn bounded_passes_results_through_and_names_the_timeout() {
        let ok = bounded(Duration::from_secs(5), "doing it", async { Ok(7) }).await;
        assert_eq!(ok.unwrap(), 7);
        let late = bounded(
            Duration::from_millis(10),
            "setting kernel args",
            std::future::pending::<Result<()>>(),
        )
        .await
        .unwrap_err();
        assert_eq!(late.0[0].summary, "Timed out");
        assert_eq!(
            late.0[0].detail,
            "Gave up setting kernel args after 0s. Raise the matching `timeouts` value if \
             Omni needs longer."
        );
    }
}
