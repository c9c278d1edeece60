//! Domain types: every value a submission carries, parsed once from raw input.
//! Holding one of these types means the value passed its rules.

mod country;
mod email;
mod field;
mod language;
mod name;
mod phone;
mod submission;
mod text;

pub use country::CountryCode;
pub use email::MemberEmail;
pub use field::{FieldError, FieldName, FieldProblem, STANDARD_FIELDS, ValidationErrors};
pub use language::LanguageTag;
pub use name::MemberName;
pub use phone::PhoneNumber;
pub use submission::{
    Consent, DuplicateField, ExtraFieldSpec, ExtraValues, FormSchema, NewSubmission, RawForm,
    RawValue,
};
pub use text::{City, ExtraValue, Message, trim_edges};
