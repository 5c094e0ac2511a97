//! Raw bindings generated from `wit/sluice.wit` (this crate's copy of the
//! workspace's `wit/sluice.wit`; a test keeps the two identical).
//!
//! Plugin authors rarely need these: the rest of the SDK wraps them.

wit_bindgen::generate!({
    path: "wit",
    world: "plugin",
    pub_export_macro: true,
    export_macro_name: "__export_sluice_plugin",
    default_bindings_module: "::sluice_sdk::bindings",
    runtime_path: "::sluice_sdk::__private::wit_bindgen::rt",
    additional_derives: [Clone, PartialEq],
});

#[cfg(test)]
mod tests {
    /// The SDK carries its own copy of the interface so it builds outside
    /// this workspace; it must be the workspace's, byte for byte.
    #[test]
    fn the_vendored_wit_is_the_workspace_wit() {
        assert!(
            include_str!("../wit/sluice.wit") == include_str!("../../wit/sluice.wit"),
            "sdk/wit/sluice.wit differs from wit/sluice.wit: copy wit/sluice.wit over it"
        );
    }
}
