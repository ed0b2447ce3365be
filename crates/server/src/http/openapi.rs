//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "idshare API",
        description = "Identity verification and Connect data sharing, wire-compatible with Persona's JSON:API. \
                       Every request needs `Authorization: Bearer <API key>`; keys belong to one environment. \
                       Answers add idshare's extensions to Persona's shape; send `Idshare-Shape: persona` for exactly Persona's shape.",
    ),
    servers((url = "/", description = "This server")),
    modifiers(&BearerAuth),
    tags(
        (name = "Inquiry templates", description = "Templates and their immutable versions"),
        (name = "Inquiries", description = "One end user's verification attempt"),
        (name = "Files", description = "Uploaded images and documents, and what was read from identity documents"),
        (name = "Verifications and reports", description = "Results of the verification pipeline"),
        (name = "Events", description = "Everything that happened, in order"),
        (name = "Connect", description = "Connections between a source and a destination organization, for sharing verified data"),
        (name = "Audit log", description = "Who (a dashboard user, an API key or the server itself) looked at or changed what, and in which request"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("idsk_<environment>_…")
                        .build(),
                ),
            );
    }
}

/// The document's fixed part; the router adds every path.
pub fn base() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
