//! A small YAML layer on top of libyaml: a node tree that keeps what go-yaml keeps (scalar
//! style, tag, line), plus an emitter reproducing go-yaml's block layout.

/// Error while reading YAML.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct YamlError(pub String);
