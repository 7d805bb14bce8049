//! State descriptors: the name and options a state is registered with, and the signature
//! (kind + types) used to reject incompatible re-registration and restores.

use std::fmt;

use crate::error::{Result, StateError};
use crate::value::StateValue;

/// The shape of a state: one value, a list, or a map per (key, namespace).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StateKind {
    /// [`crate::ValueState`]: at most one value.
    Value,
    /// [`crate::ListState`]: an ordered list of values.
    List,
    /// [`crate::MapState`]: a map from user keys to values.
    Map,
}

impl StateKind {
    /// Lower-case name, as recorded in snapshots.
    pub fn as_str(&self) -> &'static str {
        match self {
            StateKind::Value => "value",
            StateKind::List => "list",
            StateKind::Map => "map",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "value" => Some(StateKind::Value),
            "list" => Some(StateKind::List),
            "map" => Some(StateKind::Map),
            _ => None,
        }
    }
}

/// How a state is registered: a unique name and an optional time-to-live.
///
/// With a TTL, each written entry (a value, a whole list, or one map entry) expires `ttl_ms`
/// after its last write, measured on the backend's caller-supplied clock
/// ([`crate::KeyedStateBackend::set_current_time`]). Expired entries are invisible to reads and
/// are dropped by snapshots and [`crate::KeyedStateBackend::cleanup_expired`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StateDescriptor {
    name: String,
    ttl_ms: Option<i64>,
}

impl StateDescriptor {
    /// A descriptor without TTL.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ttl_ms: None,
        }
    }

    /// Sets the time-to-live in milliseconds (must be positive).
    pub fn with_ttl_ms(mut self, ttl_ms: i64) -> Self {
        self.ttl_ms = Some(ttl_ms);
        self
    }

    /// The state name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The time-to-live in milliseconds, if any.
    pub fn ttl_ms(&self) -> Option<i64> {
        self.ttl_ms
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let reason = if self.name.is_empty() {
            "name must not be empty".to_string()
        } else if let Some(ttl) = self.ttl_ms.filter(|t| *t <= 0) {
            format!("ttl must be positive, got {ttl} ms")
        } else {
            return Ok(());
        };
        Err(StateError::InvalidDescriptor {
            name: self.name.clone(),
            reason,
        })
    }
}

/// Kind and type names of a state: what must match on re-registration and restore.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StateSignature {
    pub kind: StateKind,
    pub value_type: String,
    pub map_key_type: Option<String>,
}

impl StateSignature {
    pub fn value<V: StateValue>() -> Self {
        Self {
            kind: StateKind::Value,
            value_type: V::type_name(),
            map_key_type: None,
        }
    }

    pub fn list<V: StateValue>() -> Self {
        Self {
            kind: StateKind::List,
            value_type: V::type_name(),
            map_key_type: None,
        }
    }

    pub fn map<K: StateValue, V: StateValue>() -> Self {
        Self {
            kind: StateKind::Map,
            value_type: V::type_name(),
            map_key_type: Some(K::type_name()),
        }
    }

    /// Encodes signature and TTL for a snapshot descriptor row.
    pub fn encode(&self, ttl_ms: Option<i64>) -> Vec<u8> {
        let v = (
            (self.kind.as_str().to_string(), self.value_type.clone()),
            (self.map_key_type.clone(), ttl_ms),
        );
        crate::value::encode_to_vec(&v)
    }

    /// Decodes a snapshot descriptor row into signature and TTL.
    pub fn decode(bytes: &[u8]) -> Result<(Self, Option<i64>)> {
        type Encoded = ((String, String), (Option<String>, Option<i64>));
        let ((kind, value_type), (map_key_type, ttl)) = Encoded::decode(bytes)?;
        let kind = StateKind::parse(&kind).ok_or_else(|| {
            StateError::decode("state descriptor", format!("unknown kind '{kind}'"))
        })?;
        if (kind == StateKind::Map) != map_key_type.is_some() {
            return Err(StateError::decode(
                "state descriptor",
                "map key type present iff kind is map",
            ));
        }
        Ok((
            Self {
                kind,
                value_type,
                map_key_type,
            },
            ttl,
        ))
    }
}

impl fmt::Display for StateSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.map_key_type {
            Some(k) => write!(f, "{}<{}, {}>", self.kind.as_str(), k, self.value_type),
            None => write!(f, "{}<{}>", self.kind.as_str(), self.value_type),
        }
    }
}

/// Renders a signature plus TTL for error messages.
pub(crate) fn describe(sig: &StateSignature, ttl_ms: Option<i64>) -> String {
    match ttl_ms {
        Some(t) => format!("{sig} with ttl {t} ms"),
        None => sig.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_round_trips_and_displays() {
        let s = StateSignature::map::<String, (i64, bool)>();
        let (d, ttl) = StateSignature::decode(&s.encode(Some(5))).expect("decodes");
        assert_eq!(d, s);
        assert_eq!(ttl, Some(5));
        assert_eq!(s.to_string(), "map<String, (i64,bool)>");
        assert_eq!(
            describe(&StateSignature::list::<i64>(), Some(3)),
            "list<i64> with ttl 3 ms"
        );
        assert!(StateSignature::decode(b"junk").is_err());
    }

    #[test]
    fn descriptors_are_validated() {
        assert!(StateDescriptor::new("").validate().is_err());
        assert!(StateDescriptor::new("x").with_ttl_ms(0).validate().is_err());
        assert!(StateDescriptor::new("x").with_ttl_ms(10).validate().is_ok());
    }
}
