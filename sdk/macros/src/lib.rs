//! The attribute behind `sluice_sdk::json_derive`. Plugins use it through
//! `sluice-sdk`, which documents it; this crate has no other use.

use proc_macro::{Delimiter, Group, Punct, Spacing, Span, TokenStream, TokenTree};

/// Derives serde's and schemars' traits through `sluice_sdk`'s re-exports,
/// so a plugin needs no `serde` or `schemars` dependency of its own.
///
/// `Serialize` and `Deserialize` become the re-exported serde derives with
/// `#[serde(crate = "::sluice_sdk::serde")]`, and `JsonSchema` the
/// schemars one with `#[schemars(crate = "::sluice_sdk::schemars")]`.
#[proc_macro_attribute]
pub fn json_derive(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut derives = TokenStream::new();
    let mut uses_serde = false;
    let mut uses_schemars = false;
    for name in split_commas(attr) {
        let path = match name.to_string().as_str() {
            "Serialize" => "::sluice_sdk::serde::Serialize",
            "Deserialize" => "::sluice_sdk::serde::Deserialize",
            "JsonSchema" => "::sluice_sdk::schemars::JsonSchema",
            other => {
                let span = name
                    .into_iter()
                    .next()
                    .map_or(Span::call_site(), |t| t.span());
                let message = format!(
                    "json_derive derives Serialize, Deserialize and JsonSchema; \
                     derive {other} with #[derive({other})]"
                );
                return error(&message, span, item);
            }
        };
        if path.starts_with("::sluice_sdk::serde::") {
            uses_serde = true;
        } else {
            uses_schemars = true;
        }
        if !derives.is_empty() {
            derives.extend([TokenTree::Punct(Punct::new(',', Spacing::Alone))]);
        }
        derives.extend(tokens(path));
    }
    if derives.is_empty() {
        return error(
            "name the traits to derive, e.g. #[sluice_sdk::json_derive(Deserialize, JsonSchema)]",
            Span::call_site(),
            item,
        );
    }
    // The built-in derive by its full path, whatever `derive` names here.
    let mut out = attribute("::core::prelude::v1::derive", derives);
    if uses_serde {
        out.extend(attribute(
            "serde",
            tokens("crate = \"::sluice_sdk::serde\""),
        ));
    }
    if uses_schemars {
        out.extend(attribute(
            "schemars",
            tokens("crate = \"::sluice_sdk::schemars\""),
        ));
    }
    out.extend(item);
    out
}

/// The comma-separated parts of an attribute's arguments; empty ones dropped.
fn split_commas(args: TokenStream) -> Vec<TokenStream> {
    let mut parts = vec![TokenStream::new()];
    for tree in args {
        match &tree {
            TokenTree::Punct(p) if p.as_char() == ',' => parts.push(TokenStream::new()),
            _ => {
                if let Some(last) = parts.last_mut() {
                    last.extend([tree]);
                }
            }
        }
    }
    parts.retain(|p| !p.is_empty());
    parts
}

/// `#[path(args)]`.
fn attribute(path: &str, args: TokenStream) -> TokenStream {
    let mut inner = tokens(path);
    inner.extend([TokenTree::Group(Group::new(Delimiter::Parenthesis, args))]);
    [
        TokenTree::Punct(Punct::new('#', Spacing::Alone)),
        TokenTree::Group(Group::new(Delimiter::Bracket, inner)),
    ]
    .into_iter()
    .collect()
}

/// `compile_error!(message)` pointing at `span`, then `item` unchanged so
/// that its uses do not fail too.
fn error(message: &str, span: Span, item: TokenStream) -> TokenStream {
    let message = format!("{message:?}");
    let mut out: TokenStream = tokens(&format!("::core::compile_error!({message});"))
        .into_iter()
        .map(|mut tree| {
            tree.set_span(span);
            tree
        })
        .collect();
    out.extend(item);
    out
}

/// Tokens of fixed source text in this crate.
fn tokens(source: &str) -> TokenStream {
    source
        .parse()
        .expect("the macro's own token text is valid Rust")
}
