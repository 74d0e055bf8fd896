//! hclog-style JSON logging to stderr, the format go-plugin re-emits through
//! Terraform's provider logger (terraform-plugin-protocol.md §5): one object per
//! line with `@level`, `@message`, `@module`, `@timestamp` (exactly six
//! fractional digits, else the line is demoted to raw DEBUG) and the event's
//! fields. Level from `TF_LOG_PROVIDER_<NAME>`, `TF_LOG_PROVIDER`, `TF_LOG`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The level filter for this provider, or `None` when logging is off.
pub(crate) fn level_from_env(name: &str) -> Option<Level> {
    let keys = [
        format!("TF_LOG_PROVIDER_{}", name.to_uppercase().replace('-', "_")),
        "TF_LOG_PROVIDER".to_string(),
        "TF_LOG".to_string(),
    ];
    let raw = keys
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))?;
    parse_level(&raw)
}

fn parse_level(raw: &str) -> Option<Level> {
    match raw.trim().to_ascii_uppercase().as_str() {
        "TRACE" | "JSON" => Some(Level::TRACE),
        "DEBUG" => Some(Level::DEBUG),
        "INFO" => Some(Level::INFO),
        "WARN" => Some(Level::WARN),
        "ERROR" => Some(Level::ERROR),
        "OFF" => None,
        // Terraform treats other values as TRACE.
        _ => Some(Level::TRACE),
    }
}

/// Installs the stderr JSON layer when a level is set. Safe to call twice.
pub(crate) fn init(name: &str) {
    let Some(level) = level_from_env(name) else {
        return;
    };
    // Transport crates are chatty at debug; keep them at warn.
    let filter = EnvFilter::new(format!("{level},h2=warn,hyper=warn,tower=warn,rustls=warn"));
    let layer = HclogLayer {
        module: format!("provider.{name}"),
    };
    let _ = tracing_subscriber::registry()
        .with(layer.with_filter(filter))
        .try_init();
}

/// A tracing layer that writes hclog JSON lines to stderr.
pub struct HclogLayer {
    module: String,
}

impl HclogLayer {
    /// A layer tagging lines with `@module` = `module`.
    pub fn new(module: impl Into<String>) -> Self {
        HclogLayer {
            module: module.into(),
        }
    }
}

struct JsonFields {
    message: String,
    fields: serde_json::Map<String, serde_json::Value>,
}

impl Visit for JsonFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.fields.insert(field.name().to_string(), value.into());
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.fields.insert(field.name().to_string(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.fields.insert(field.name().to_string(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.fields.insert(field.name().to_string(), value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = text;
        } else {
            self.fields.insert(field.name().to_string(), text.into());
        }
    }
}

impl<S: Subscriber> Layer<S> for HclogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut v = JsonFields {
            message: String::new(),
            fields: serde_json::Map::new(),
        };
        event.record(&mut v);
        let line = format_line(
            *event.metadata().level(),
            &self.module,
            &v.message,
            v.fields,
        );
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(line.as_bytes());
    }
}

/// One hclog JSON line (with trailing newline).
pub(crate) fn format_line(
    level: Level,
    module: &str,
    message: &str,
    mut fields: serde_json::Map<String, serde_json::Value>,
) -> String {
    let level = match level {
        Level::TRACE => "trace",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warn",
        Level::ERROR => "error",
    };
    fields.insert("@level".into(), level.into());
    fields.insert("@message".into(), message.into());
    fields.insert("@module".into(), module.into());
    fields.insert("@timestamp".into(), timestamp(SystemTime::now()).into());
    let mut s = serde_json::to_string(&fields).unwrap_or_default();
    s.push('\n');
    s
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ` in UTC.
pub(crate) fn timestamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, day) = civil_from_days(days);
    let mut s = String::with_capacity(27);
    let _ = write!(
        s,
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60,
        d.subsec_micros()
    );
    s
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamp_has_six_fraction_digits_and_z() {
        let t = UNIX_EPOCH + Duration::from_micros(1_764_153_600_123_456);
        assert_eq!(timestamp(t), "2025-11-26T10:40:00.123456Z");
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert!(timestamp(leap).starts_with("2000-02-29T00:00:00"));
    }

    #[test]
    fn line_is_hclog_json() {
        let mut f = serde_json::Map::new();
        f.insert("tf_rpc".into(), "ReadResource".into());
        let line = format_line(Level::INFO, "provider.omni", "hello", f);
        assert!(line.ends_with('\n'));
        let v: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(v["@level"], "info");
        assert_eq!(v["@message"], "hello");
        assert_eq!(v["@module"], "provider.omni");
        assert_eq!(v["tf_rpc"], "ReadResource");
        assert_eq!(v["@timestamp"].as_str().unwrap().len(), 27);
    }

    #[test]
    fn levels_parse_like_terraform() {
        assert_eq!(parse_level("json"), Some(Level::TRACE));
        assert_eq!(parse_level("warn"), Some(Level::WARN));
        assert_eq!(parse_level("OFF"), None);
        assert_eq!(parse_level("bogus"), Some(Level::TRACE));
    }
}
