//! Domain types: every value a submission carries, parsed once from raw input.
//! Holding one of these types means the value passed its rules.

mod country;
mod email;
mod field;
mod followup;
mod id;
mod language;
mod name;
mod phone;
mod reserved;
mod spam;
mod status;
mod submission;
mod text;
mod time;

pub use country::CountryCode;
pub use email::MemberEmail;
pub use field::{
    FieldError, FieldName, FieldProblem, PROOF_OF_WORK_FIELD, STANDARD_FIELDS, ValidationErrors,
};
pub use followup::{BadMark, FollowupState, MailKind};
pub use id::SubmissionId;
pub use language::LanguageTag;
pub use name::{MemberName, shown_name};
pub use phone::PhoneNumber;
pub use reserved::ReservedDomain;
pub use spam::{HoldReason, PowVerdict, ProofOfWork, SpamReason, TokenNonce};
pub use status::{ConfirmationMode, ReviewStatus, SubmissionStatus};
pub use submission::{
    Consent, DuplicateField, ExtraFieldSpec, ExtraValues, FormSchema, NewSubmission, RawForm,
    RawValue,
};
pub use text::{City, ExtraValue, Message, trim_edges};
pub use time::Timestamp;
