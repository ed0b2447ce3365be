//! The JSON:API resource object, the shape every rendered object takes on the wire and in event
//! payloads. Parsing requests and writing responses are the HTTP edge's.

use serde::Serialize;
use serde_json::{Map, Value, json};

/// One JSON:API resource object with typed attributes.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ResourceObject<A> {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    pub attributes: A,
    /// To-one relationships as `{"data": {"type", "id"} | null}`.
    #[schema(value_type = Object)]
    pub relationships: Map<String, Value>,
}

impl<A> ResourceObject<A> {
    pub fn new(kind: &str, id: impl Into<String>, attributes: A) -> Self {
        Self {
            kind: kind.to_owned(),
            id: id.into(),
            attributes,
            relationships: Map::new(),
        }
    }

    /// Adds a to-one relationship (`null` when absent).
    pub fn relationship(mut self, name: &str, target: Option<(&str, &str)>) -> Self {
        let data = target.map_or(Value::Null, |(kind, id)| json!({"type": kind, "id": id}));
        self.relationships
            .insert(name.to_owned(), json!({ "data": data }));
        self
    }
}
