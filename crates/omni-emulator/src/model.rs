//! The emulator's own resource representation.
//!
//! Storage, persistence and controllers work on [`Res`], not on the generated protobuf types, so
//! that the storage rules (omni-api.md §1.5–§1.8) do not depend on how the wire types are
//! generated. Conversions to and from `cosi.resource.Resource` live in `convert.rs`.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// Resource phase: exactly `running` or `tearingDown` on the wire (omni-api.md §1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// `running`
    Running,
    /// `tearingDown`
    TearingDown,
}

impl Phase {
    /// Wire text of the phase.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Running => "running",
            Phase::TearingDown => "tearingDown",
        }
    }

    /// Parses the wire text; anything else is rejected (omni-api.md §1.4: even "").
    pub fn parse(s: &str) -> Option<Phase> {
        match s {
            "running" => Some(Phase::Running),
            "tearingDown" => Some(Phase::TearingDown),
            _ => None,
        }
    }
}

/// A point in time as (seconds, nanoseconds) since the Unix epoch, like protobuf Timestamp.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time {
    /// Seconds since the epoch.
    pub secs: i64,
    /// Nanoseconds within the second.
    pub nanos: i32,
}

impl Time {
    /// The current wall-clock time.
    pub fn now() -> Time {
        let d = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Time {
            secs: d.as_secs() as i64,
            nanos: d.subsec_nanos() as i32,
        }
    }

    /// RFC 3339 rendering in UTC with second precision (used by the JSON API, §11).
    pub fn rfc3339(self) -> String {
        let days = self.secs.div_euclid(86_400);
        let rem = self.secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            rem / 3600,
            (rem % 3600) / 60,
            rem % 60
        )
    }
}

/// Converts days since 1970-01-01 into a (year, month, day) civil date.
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

/// Parses an RFC 3339 UTC timestamp of the form `YYYY-MM-DDTHH:MM:SS[.fff]Z`.
pub fn parse_rfc3339(s: &str) -> Option<Time> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = if mo > 2 { mo - 3 } else { mo + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(Time {
        secs: days * 86_400 + h * 3600 + mi * 60 + se,
        nanos: 0,
    })
}

/// Memoized rendering of a spec (the `yaml_spec` of responses). Cloning gives an empty cell,
/// so a copy that is about to be modified never carries a stale rendering; equality ignores it.
#[derive(Default)]
pub struct RenderCache(std::sync::OnceLock<String>);

impl RenderCache {
    /// The cached text, computed by `f` on first use.
    pub fn get_or_init(&self, f: impl FnOnce() -> String) -> &str {
        self.0.get_or_init(f)
    }
}

impl Clone for RenderCache {
    fn clone(&self) -> Self {
        RenderCache::default()
    }
}

impl PartialEq for RenderCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for RenderCache {}

impl fmt::Debug for RenderCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RenderCache")
    }
}

/// One stored resource. `spec` is the serialized spec message (`proto_spec`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Res {
    /// Namespace, e.g. `default`.
    pub namespace: String,
    /// Type, e.g. `Clusters.omni.sidero.dev`.
    pub typ: String,
    /// Resource ID.
    pub id: String,
    /// Version counter; 0 means "undefined" (not stored yet).
    pub version: u64,
    /// Owning controller, `""` for user resources.
    pub owner: String,
    /// Lifecycle phase.
    pub phase: Phase,
    /// Creation time.
    pub created: Time,
    /// Last update time.
    pub updated: Time,
    /// Finalizers (controller names) that block Destroy.
    pub finalizers: Vec<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// Serialized spec message.
    pub spec: Vec<u8>,
    /// Memoized `yaml_spec` of this exact state.
    pub yaml: RenderCache,
}

impl Res {
    /// A new, unsaved resource with the given coordinates and spec.
    pub fn new(namespace: &str, typ: &str, id: &str, spec: Vec<u8>) -> Res {
        Res {
            namespace: namespace.to_string(),
            typ: typ.to_string(),
            id: id.to_string(),
            version: 0,
            owner: String::new(),
            phase: Phase::Running,
            created: Time::default(),
            updated: Time::default(),
            finalizers: Vec::new(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            spec,
            yaml: RenderCache::default(),
        }
    }

    /// Builder-style label setter.
    pub fn with_label(mut self, k: &str, v: &str) -> Res {
        self.labels.insert(k.to_string(), v.to_string());
        self
    }

    /// Text form of the version: decimal, or `undefined` for an unsaved resource.
    pub fn version_str(&self) -> String {
        version_text(self.version)
    }

    /// The label's value, if present.
    pub fn label(&self, k: &str) -> Option<&str> {
        self.labels.get(k).map(String::as_str)
    }

    /// Whether the resource carries the finalizer.
    pub fn has_finalizer(&self, f: &str) -> bool {
        self.finalizers.iter().any(|x| x == f)
    }

    /// `<Type>(<ns>/<id>@<version>)`, the COSI `Metadata.String()` form used in errors (§1.7).
    pub fn pointer(&self) -> Pointer<'_> {
        Pointer {
            typ: &self.typ,
            ns: &self.namespace,
            id: &self.id,
            version: self.version,
        }
    }
}

/// Text of a version counter (0 = `undefined`).
pub fn version_text(v: u64) -> String {
    if v == 0 {
        "undefined".to_string()
    } else {
        v.to_string()
    }
}

/// Formats `<Type>(<ns>/<id>@<version>)`.
pub struct Pointer<'a> {
    /// Type.
    pub typ: &'a str,
    /// Namespace.
    pub ns: &'a str,
    /// ID.
    pub id: &'a str,
    /// Version (0 = undefined).
    pub version: u64,
}

impl fmt::Display for Pointer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}({}/{}@{})",
            self.typ,
            self.ns,
            self.id,
            version_text(self.version)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip() {
        for secs in [0i64, 951_782_400, 1_767_225_600, 4_102_444_799] {
            let t = Time { secs, nanos: 0 };
            assert_eq!(parse_rfc3339(&t.rfc3339()), Some(t), "{}", t.rfc3339());
        }
        assert_eq!(
            Time {
                secs: 1_767_225_600,
                nanos: 0
            }
            .rfc3339(),
            "2026-01-01T00:00:00Z"
        );
    }

    #[test]
    fn pointer_format() {
        let r = Res::new("default", "Clusters.omni.sidero.dev", "c1", vec![]);
        assert_eq!(
            r.pointer().to_string(),
            "Clusters.omni.sidero.dev(default/c1@undefined)"
        );
    }
}
