//! The OpenAPI document parses as OpenAPI 3.1 with an independent parser (oas3), every
//! operation has responses, and every reference in it (request bodies, response bodies)
//! resolves.

#[test]
fn the_document_is_valid_openapi_3_1_and_every_reference_resolves() {
    let json = serde_json::to_string(&floe_promotion_server::openapi()).expect("serialises");
    let spec = oas3::from_json(&json).expect("parses as an OpenAPI 3.1 document");
    let version = spec.validate_version().expect("a supported version");
    assert_eq!((version.major, version.minor), (3, 1));
    let mut operations = 0;
    for (path, method, op) in spec.operations() {
        operations += 1;
        let responses = op.responses(&spec);
        assert!(!responses.is_empty(), "{method} {path} has no response");
        assert_eq!(
            responses.len(),
            op.responses.as_ref().map_or(0, |r| r.len()),
            "{method} {path}: a response does not resolve"
        );
        for (status, response) in &responses {
            for (media, content) in &response.content {
                content
                    .schema(&spec)
                    .unwrap_or_else(|e| panic!("{method} {path} {status} {media}: {e}"));
            }
        }
        if let Some(body) = op.request_body(&spec).expect("the request body resolves") {
            for (media, content) in &body.content {
                let schema = content
                    .schema(&spec)
                    .unwrap_or_else(|e| panic!("{method} {path} body {media}: {e}"));
                assert!(schema.is_some(), "{method} {path}: a body without a schema");
            }
        }
    }
    assert_eq!(operations, 17, "every handler is in the document");
    // Mutating operations name the bearer scheme; reads do not need it.
    let value: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(
        value["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(value["paths"]["/api/v1/promotions"]["post"]["security"].is_array());
    assert!(value["paths"]["/api/v1/history"]["get"]["security"].is_null());
}
