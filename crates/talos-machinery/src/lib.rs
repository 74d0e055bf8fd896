//! talos-machinery
