// TEMPORARY STUB: replaced by the real module.
use crate::registry::model::PluginHost;
use std::sync::Arc;
pub async fn serve_stdio<P: PluginHost>(_host: Arc<P>) -> anyhow::Result<()> { todo!() }
