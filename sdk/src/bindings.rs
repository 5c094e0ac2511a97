//! Raw bindings generated from `wit/sluice.wit`.
//!
//! Plugin authors rarely need these: the rest of the SDK wraps them.

wit_bindgen::generate!({
    path: "../wit",
    world: "plugin",
    pub_export_macro: true,
    export_macro_name: "__export_sluice_plugin",
    default_bindings_module: "::sluice_sdk::bindings",
    runtime_path: "::sluice_sdk::__private::wit_bindgen::rt",
    additional_derives: [Clone, PartialEq],
});
