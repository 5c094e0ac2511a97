// TEMPORARY STUB: replaced by the real codec.
use super::value::Value;
use sqlx::postgres::{PgTypeInfo, PgValueRef};
#[derive(Debug, thiserror::Error)]
pub enum CodecError { #[error("{0}")] Other(String) }
pub fn decode(_value: PgValueRef<'_>) -> Result<Value, CodecError> { todo!() }
pub fn is_decodable(_ty: &PgTypeInfo) -> bool { todo!() }
pub fn type_name(_ty: &PgTypeInfo) -> String { todo!() }
pub fn to_text_input(_value: &Value, _target: &PgTypeInfo) -> Result<Option<String>, CodecError> { todo!() }
pub fn encode_binary(_value: &Value, _target: &PgTypeInfo) -> Result<Option<RawParam>, CodecError> { todo!() }
pub struct RawParam { ty: PgTypeInfo, bytes: Option<Vec<u8>> }
impl RawParam { pub fn new(ty: PgTypeInfo, bytes: Option<Vec<u8>>) -> Self { RawParam { ty, bytes } } }
impl sqlx::Type<sqlx::Postgres> for RawParam { fn type_info() -> PgTypeInfo { todo!() } }
impl sqlx::Encode<'_, sqlx::Postgres> for RawParam {
    fn encode_by_ref(&self, _buf: &mut sqlx::postgres::PgArgumentBuffer) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> { let _ = (&self.ty, &self.bytes); todo!() }
}
