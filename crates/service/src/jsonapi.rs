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
    /// To-one relationships as `{"data": {"type", "id"} | null}`, to-many ones as
    /// `{"data": [{"type", "id"}]}`.
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

    /// Adds a to-many relationship.
    pub fn to_many<K: AsRef<str>, I: AsRef<str>>(
        mut self,
        name: &str,
        targets: impl IntoIterator<Item = (K, I)>,
    ) -> Self {
        let data: Vec<Value> = targets
            .into_iter()
            .map(|(kind, id)| json!({"type": kind.as_ref(), "id": id.as_ref()}))
            .collect();
        self.relationships
            .insert(name.to_owned(), json!({ "data": data }));
        self
    }
}

/// The request header an integration sends to get exactly Persona's shape: `Idshare-Shape:
/// persona` (the default, `idshare`, adds idshare's extensions).
pub const SHAPE_HEADER: &str = "idshare-shape";

/// The members idshare adds to one type of resource over Persona's shape.
#[derive(Debug)]
pub struct Extension {
    /// The resource `type`, or its prefix when it ends with `/` (`verification/`).
    pub kind: &'static str,
    pub attributes: &'static [&'static str],
    /// Whether `relationships` is an extension as a whole (Persona's object has none).
    pub relationships: bool,
}

/// idshare's extensions over Persona's resources, one row per type: what an answer in
/// Persona's exact shape leaves out. docs/persona-compatibility.md lists the same table.
pub const EXTENSIONS: &[Extension] = &[
    Extension {
        kind: "inquiry",
        attributes: &["missing-requirements", "field-provenance"],
        relationships: false,
    },
    Extension {
        kind: "inquiry-template",
        attributes: &[
            "verifications",
            "reports",
            "expiration",
            "created-at",
            "updated-at",
        ],
        relationships: false,
    },
    Extension {
        kind: "inquiry-template-version",
        attributes: &[
            "version-number",
            "field-schemas",
            "verifications",
            "reports",
            "expiration",
        ],
        relationships: false,
    },
    Extension {
        kind: "verification/",
        attributes: &["verification-type", "required", "submission", "details"],
        relationships: false,
    },
    Extension {
        kind: "report/",
        attributes: &["report-type", "submission", "matches", "dismissed"],
        relationships: false,
    },
    Extension {
        kind: "event",
        attributes: &["sequence"],
        relationships: true,
    },
    Extension {
        kind: "connect/connection",
        attributes: &["direction", "activated-at", "deactivated-at"],
        relationships: false,
    },
    Extension {
        kind: "connect/share-token",
        attributes: &["failure-detail", "source-data-unavailable-reason"],
        relationships: false,
    },
    Extension {
        kind: "webhook",
        attributes: &["updated-at", "archived-at", "idshare-shape"],
        relationships: true,
    },
];

/// Members of a document's `meta` that are idshare's: when a one-time link or session token
/// expires, and the hosted flow's URL for a session token.
pub const META_EXTENSIONS: &[&str] = &[
    "one-time-link-expires-at",
    "session-token-expires-at",
    "flow-url",
];

/// A field schema's member that is idshare's: the file field's own type.
pub const FIELD_SCHEMA_EXTENSIONS: &[&str] = &["idshare-type"];

/// The extensions of resources of type `kind`.
pub fn extension_of(kind: &str) -> Option<&'static Extension> {
    EXTENSIONS.iter().find(|e| {
        if e.kind.ends_with('/') {
            kind.starts_with(e.kind)
        } else {
            kind == e.kind
        }
    })
}

/// Rewrites an answer of `status` into exactly Persona's shape: no extension member in any
/// resource (including those inside event payloads), `meta` or error; an empty `included`
/// left out; error objects as Persona's schema for that status has them.
pub fn persona_exact(document: &mut Value, status: u16) {
    let Value::Object(members) = document else {
        return;
    };
    if members
        .get("included")
        .and_then(Value::as_array)
        .is_some_and(Vec::is_empty)
    {
        members.remove("included");
    }
    if let Some(Value::Object(meta)) = members.get_mut("meta") {
        meta.retain(|k, _| !META_EXTENSIONS.contains(&k.as_str()));
    }
    for key in ["data", "included"] {
        match members.get_mut(key) {
            Some(Value::Array(resources)) => resources.iter_mut().for_each(exact_resource),
            Some(resource @ Value::Object(_)) => exact_resource(resource),
            _ => {}
        }
    }
    if let Some(Value::Array(errors)) = members.get_mut("errors") {
        errors.iter_mut().for_each(|e| exact_error(e, status));
    }
}

fn exact_resource(resource: &mut Value) {
    let Value::Object(members) = resource else {
        return;
    };
    let kind = members
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if let Some(extension) = extension_of(&kind) {
        if extension.relationships {
            members.remove("relationships");
        }
        if let Some(Value::Object(attributes)) = members.get_mut("attributes") {
            attributes.retain(|k, _| !extension.attributes.contains(&k.as_str()));
        }
    }
    let Some(Value::Object(attributes)) = members.get_mut("attributes") else {
        return;
    };
    if let Some(Value::Array(schemas)) = attributes.get_mut("field-schemas") {
        for schema in schemas.iter_mut().filter_map(Value::as_object_mut) {
            schema.retain(|k, _| !FIELD_SCHEMA_EXTENSIONS.contains(&k.as_str()));
        }
    }
    // An event's payload holds the object as the API rendered it: in Persona's shape too.
    if let Some(data) = attributes
        .get_mut("payload")
        .and_then(|p| p.get_mut("data"))
    {
        exact_resource(data);
    }
}

/// Persona's error objects: `title`, `details` and `meta` (where a 4xx other than 401, 422
/// and 429 says where: idshare's `source` moves into `meta`), `source.pointer` for a 422,
/// only `title` for a 401.
fn exact_error(error: &mut Value, status: u16) {
    let Value::Object(members) = error else {
        return;
    };
    let source = members.remove("source");
    match status {
        401 => members.retain(|k, _| k == "title"),
        422 => {
            if let Some(pointer) = source.as_ref().and_then(|s| s.get("pointer")) {
                members.insert("source".to_owned(), json!({ "pointer": pointer }));
            }
        }
        400 | 403 | 404 | 409 => {
            if let Some(source) = source {
                members.insert("meta".to_owned(), json!({ "source": source }));
            }
        }
        _ => members.retain(|k, _| k == "title" || k == "details"),
    }
}
