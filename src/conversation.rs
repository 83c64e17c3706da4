//! What a conversation is made of, shared by the chat pipeline, the audit record and the
//! HTTP API: who spoke, how a reply was produced, what it cites and why a person took
//! over. Each is an enum with one text form, used on the wire and in the database alike.

use serde::{Deserialize, Serialize};

/// Who said a message (the transcript's `role`).
#[derive(
    utoipa::ToSchema,
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Speaker {
    /// The customer: `user`, as in the chat-completions protocol the API follows.
    #[serde(rename = "user")]
    #[strum(serialize = "user")]
    Customer,
    /// Teller's assistant.
    Assistant,
}

/// How a reply was produced (recorded with it).
#[derive(
    utoipa::ToSchema,
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Mode {
    /// A compliance-approved FAQ answer, verbatim.
    Approved,
    /// Written by the model from the retrieved passages.
    Generated,
    /// Sentences quoted from the passages, without a model.
    Extractive,
    /// Declined; a colleague is offered when the reply carries a handoff reason.
    Refusal,
    /// A person takes over.
    Handoff,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Why a person takes over, or why the assistant declined (the API's `handoff.reason`).
#[derive(
    utoipa::ToSchema,
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum HandoffReason {
    CustomerRequest,
    LostCard,
    FraudOrScam,
    Complaint,
    VulnerableCustomer,
    AccountSpecific,
    MissingKnowledge,
    PolicyRestriction,
    ToolFailure,
}

impl HandoffReason {
    pub const ALL: [HandoffReason; 9] = [
        HandoffReason::CustomerRequest,
        HandoffReason::LostCard,
        HandoffReason::FraudOrScam,
        HandoffReason::Complaint,
        HandoffReason::VulnerableCustomer,
        HandoffReason::AccountSpecific,
        HandoffReason::MissingKnowledge,
        HandoffReason::PolicyRestriction,
        HandoffReason::ToolFailure,
    ];

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Reasons that raise a risk alert (an audit event and a metric) besides the handoff,
    /// so a bank can watch for waves of scams.
    pub fn is_risk(self) -> bool {
        self == HandoffReason::FraudOrScam
    }
}

/// A handoff as the reply carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Handoff {
    pub reason: HandoffReason,
}

/// A passage the answer relies on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Citation {
    pub source_id: String,
    pub title: String,
    pub snippet: String,
    pub score: f32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_enum_has_one_text_form_on_the_wire_and_in_the_record() {
        for reason in HandoffReason::ALL {
            let json = serde_json::to_value(reason).unwrap();
            assert_eq!(json, reason.as_str());
            assert_eq!(reason.as_str().parse::<HandoffReason>().unwrap(), reason);
        }
        assert_eq!(serde_json::to_value(Speaker::Customer).unwrap(), "user");
        assert_eq!("user".parse::<Speaker>().unwrap(), Speaker::Customer);
        assert_eq!(Speaker::Assistant.to_string(), "assistant");
        assert_eq!("extractive".parse::<Mode>().unwrap(), Mode::Extractive);
    }
}
