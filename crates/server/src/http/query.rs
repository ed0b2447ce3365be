//! Query-string conventions: `page[size|after|before]`, `filter[…]`, `fields[type]`, `include`.
//! Parsed once per request; unknown parameters are refused rather than silently ignored.

use std::collections::BTreeMap;

use idshare_domain::{
    inflection::key_to_kebab,
    permission::{Permission, PermissionSet},
};
use idshare_store::{Cursor, Page};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

use crate::http::{auth::Caller, error::ApiError, jsonapi::Links};

pub const DEFAULT_PAGE_SIZE: u32 = 10;
pub const MAX_PAGE_SIZE: u32 = 100;

/// `fields[<type>]=a,b` per resource type.
pub type Fieldsets = BTreeMap<String, Vec<String>>;

/// What a list or retrieve request asked for.
#[derive(Debug, Default)]
pub struct QueryParams {
    pub page_size: u32,
    pub after: Option<String>,
    pub before: Option<String>,
    pub filters: BTreeMap<String, String>,
    pub fields: Fieldsets,
    pub include: Vec<String>,
    pub flags: BTreeMap<String, String>,
}

/// Which parameters an endpoint understands.
#[derive(Debug, Clone, Copy, Default)]
pub struct Accepts {
    pub paginated: bool,
    pub filters: &'static [&'static str],
    /// Only through [`QueryParams::parse_for`], which checks their permissions.
    pub includes: &'static [Include],
    pub flags: &'static [&'static str],
}

/// A related resource an endpoint can add to `included`, and the permission reading that
/// resource needs (the endpoint's own permission does not cover it).
#[derive(Debug, Clone, Copy)]
pub struct Include {
    pub path: &'static str,
    pub permission: Permission,
}

impl QueryParams {
    /// The parameters of an endpoint that includes nothing.
    pub fn parse(query: Option<&str>, accepts: Accepts) -> Result<Self, ApiError> {
        Self::parse_inner(query, accepts, None)
    }

    /// The parameters of an endpoint that can include related resources: each path asked for
    /// needs the permission of the resource it adds (403 naming `include` otherwise).
    pub fn parse_for(
        caller: &Caller,
        query: Option<&str>,
        accepts: Accepts,
    ) -> Result<Self, ApiError> {
        Self::parse_inner(query, accepts, Some(&caller.permissions))
    }

    fn parse_inner(
        query: Option<&str>,
        accepts: Accepts,
        permissions: Option<&PermissionSet>,
    ) -> Result<Self, ApiError> {
        // Without the caller's permissions nothing can be included.
        let includes = if permissions.is_some() {
            accepts.includes
        } else {
            &[]
        };
        let mut params = QueryParams {
            page_size: DEFAULT_PAGE_SIZE,
            ..Default::default()
        };
        for (name, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            let (base, inner) = split_bracket(&name);
            let invalid =
                |details: String| ApiError::bad_request(details).parameter(name.to_string());
            match (base, inner) {
                ("page", Some(which)) if accepts.paginated => match which {
                    "size" => {
                        params.page_size = value
                            .parse::<u32>()
                            .ok()
                            .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
                            .ok_or_else(|| {
                                invalid(format!(
                                    "`page[size]` must be a whole number from 1 to {MAX_PAGE_SIZE}."
                                ))
                            })?;
                    }
                    // An empty cursor or filter (`page[after]=`, `filter[status]=`) asks for
                    // nothing.
                    "after" | "before" if value.is_empty() => {}
                    "after" => params.after = Some(value.into_owned()),
                    "before" => params.before = Some(value.into_owned()),
                    _ => return Err(invalid(format!("Unknown pagination parameter `{name}`."))),
                },
                ("filter", Some(key)) if !accepts.filters.is_empty() => {
                    let key = key_to_kebab(key);
                    if !accepts.filters.contains(&key.as_str()) {
                        return Err(invalid(format!(
                            "Unknown filter `{key}`. Filters here: {}.",
                            accepts.filters.join(", ")
                        )));
                    }
                    if !value.is_empty() {
                        params.filters.insert(key, value.into_owned());
                    }
                }
                ("fields", Some(kind)) => {
                    let attributes = value
                        .split(',')
                        .map(|a| key_to_kebab(a.trim()))
                        .filter(|a| !a.is_empty())
                        .collect();
                    params.fields.insert(kind.to_owned(), attributes);
                }
                ("include", None) => {
                    for path in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                        let path = key_to_kebab(path);
                        let Some(include) = includes.iter().find(|i| i.path == path) else {
                            return Err(invalid(format!(
                                "Cannot include `{path}` here.{}",
                                if includes.is_empty() {
                                    String::new()
                                } else {
                                    let paths: Vec<_> = includes.iter().map(|i| i.path).collect();
                                    format!(" Includable: {}.", paths.join(", "))
                                }
                            )));
                        };
                        if !permissions.is_some_and(|p| p.contains(include.permission)) {
                            return Err(ApiError::forbidden(format!(
                                "This API key lacks the `{}` permission needed to include `{path}`.",
                                include.permission
                            ))
                            .parameter("include"));
                        }
                        params.include.push(path);
                    }
                }
                (flag, None) if accepts.flags.contains(&key_to_kebab(flag).as_str()) => {
                    params.flags.insert(key_to_kebab(flag), value.into_owned());
                }
                _ => return Err(invalid(format!("Unknown query parameter `{name}`."))),
            }
        }
        if params.after.is_some() && params.before.is_some() {
            return Err(ApiError::bad_request(
                "Use either `page[after]` or `page[before]`, not both.",
            )
            .parameter("page[before]"));
        }
        Ok(params)
    }

    pub fn cursor(&self) -> Cursor<'_> {
        match (&self.after, &self.before) {
            (Some(after), _) => Cursor::After(after),
            (None, Some(before)) => Cursor::Before(before),
            (None, None) => Cursor::Start,
        }
    }

    /// The error for a cursor that names no object of the list.
    pub fn bad_cursor(&self) -> ApiError {
        let parameter = if self.after.is_some() {
            "page[after]"
        } else {
            "page[before]"
        };
        ApiError::bad_request(format!(
            "`{parameter}` does not name an object of this list (cursors are object ids taken from a previous page)."
        ))
        .parameter(parameter)
    }

    pub fn filter(&self, key: &str) -> Option<&str> {
        self.filters.get(key).map(String::as_str)
    }

    /// `filter[<key>]` when it is one of `allowed`; a 400 naming the parameter otherwise.
    pub fn filter_one_of(&self, key: &str, allowed: &[&str]) -> Result<Option<&str>, ApiError> {
        self.filter(key)
            .map(|raw| {
                if allowed.contains(&raw) {
                    Ok(raw)
                } else {
                    Err(ApiError::bad_request(format!(
                        "`{raw}` is not a valid {key} here (expected one of: {})",
                        allowed.join(", ")
                    ))
                    .parameter(format!("filter[{key}]")))
                }
            })
            .transpose()
    }

    pub fn includes(&self, path: &str) -> bool {
        self.include.iter().any(|p| p == path)
    }

    pub fn flag(&self, name: &str) -> Option<&str> {
        self.flags.get(name).map(String::as_str)
    }

    /// `links.prev` / `links.next` for a page whose items have the given ids, keeping filters.
    pub fn links<T>(&self, path: &str, page: &Page<T>, id_of: impl Fn(&T) -> &str) -> Links {
        let mut base = format!("page%5Bsize%5D={}", self.page_size);
        for (key, value) in &self.filters {
            base.push_str(&format!("&filter%5B{}%5D={}", encode(key), encode(value)));
        }
        for (kind, attributes) in &self.fields {
            base.push_str(&format!(
                "&fields%5B{}%5D={}",
                encode(kind),
                encode(&attributes.join(","))
            ));
        }
        let link =
            |which: &str, id: &str| format!("{path}?{base}&page%5B{which}%5D={}", encode(id));
        let next = page
            .has_older
            .then(|| page.items.last().map(|t| link("after", id_of(t))))
            .flatten();
        let prev = page
            .has_newer
            .then(|| page.items.first().map(|t| link("before", id_of(t))))
            .flatten();
        Links { prev, next }
    }
}

fn encode(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

/// `filter[status]` → `("filter", Some("status"))`; `include` → `("include", None)`.
fn split_bracket(name: &str) -> (&str, Option<&str>) {
    match name.split_once('[') {
        Some((base, rest)) if rest.ends_with(']') => (base, Some(&rest[..rest.len() - 1])),
        _ => (name, None),
    }
}

#[cfg(test)]
mod tests {
    use idshare_domain::{
        environment::Environment,
        id::{ApiKeyId, OrgId},
    };
    use idshare_store::Scope;

    use super::*;

    const LIST: Accepts = Accepts {
        paginated: true,
        filters: &["status", "reference-id"],
        includes: &[Include {
            path: "inquiry-template",
            permission: Permission::InquiryTemplateRead,
        }],
        flags: &[],
    };

    fn caller(permissions: &str) -> Caller {
        Caller {
            api_key_id: ApiKeyId::generate(),
            scope: Scope::new(OrgId::generate(), Environment::Sandbox),
            permissions: PermissionSet::parse_list(permissions).unwrap(),
            request_id: None,
        }
    }

    #[test]
    fn parses_pages_filters_fields_and_includes() {
        let q = QueryParams::parse_for(
            &caller("inquiry.read, inquiry-template.read"),
            Some("page%5Bsize%5D=5&filter[referenceId]=u-1&fields[inquiry]=status,referenceId&include=inquiry-template"),
            LIST,
        )
        .unwrap();
        assert_eq!(q.page_size, 5);
        assert_eq!(q.filter("reference-id"), Some("u-1"));
        assert_eq!(q.fields["inquiry"], vec!["status", "reference-id"]);
        assert!(q.includes("inquiry-template"));
    }

    #[test]
    fn an_include_needs_the_permission_of_what_it_adds() {
        let err = QueryParams::parse_for(
            &caller("inquiry.read"),
            Some("include=inquiryTemplate"),
            LIST,
        )
        .unwrap_err();
        assert_eq!(err.status, 403);
        let source = err.errors[0].source.as_ref().unwrap();
        assert_eq!(source.parameter.as_deref(), Some("include"));
        assert!(err.errors[0].details.contains("`inquiry-template.read`"));
        // Without a caller to check, nothing can be included.
        let err = QueryParams::parse(Some("include=inquiry-template"), LIST).unwrap_err();
        assert_eq!(err.status, 400);
    }

    #[test]
    fn refuses_bad_sizes_unknown_filters_and_parameters() {
        for bad in [
            "page[size]=0",
            "page[size]=101",
            "page[size]=x",
            "filter[color]=red",
            "sort=x",
            "include=secrets",
            "page[after]=a&page[before]=b",
        ] {
            let err = QueryParams::parse_for(&caller("inquiry.read"), Some(bad), LIST).unwrap_err();
            assert_eq!(err.status, 400, "{bad}");
        }
    }

    #[test]
    fn empty_cursors_and_filters_ask_for_nothing() {
        let q = QueryParams::parse_for(
            &caller("inquiry.read"),
            Some("page[after]=&page[before]=&filter[status]=&filter[reference-id]=u-1"),
            LIST,
        )
        .unwrap();
        assert!(q.after.is_none() && q.before.is_none());
        assert_eq!(q.filter("status"), None);
        assert_eq!(q.filter("reference-id"), Some("u-1"));
        // An empty value does not make an unknown filter known.
        let err = QueryParams::parse_for(&caller("inquiry.read"), Some("filter[color]="), LIST)
            .unwrap_err();
        assert_eq!(err.status, 400);
    }
}
