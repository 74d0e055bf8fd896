//! Transport-free Image Factory model (image-factory-and-talos.md §3).

pub use crate::urls;

/// An HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactoryResponse {
    /// Status code.
    pub status: u16,
    /// Content-Type.
    pub content_type: String,
    /// Body bytes.
    pub body: Vec<u8>,
}

/// In-memory Image Factory.
#[derive(Debug, Default)]
pub struct Factory {
    schematics: std::sync::Mutex<std::collections::BTreeMap<String, String>>,
}

impl Factory {
    /// New factory with an empty schematic registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Handles one request.
    pub fn handle(&self, method: &str, path: &str, body: &[u8]) -> FactoryResponse {
        let _ = (method, path, body, &self.schematics);
        FactoryResponse {
            status: 501,
            content_type: "text/plain".into(),
            body: b"not implemented yet\n".to_vec(),
        }
    }
}
