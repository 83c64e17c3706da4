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
    /// A member of the contact centre who took the conversation over.
    Agent,
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
    /// A person owns the conversation: the message went to them, and the assistant said
    /// nothing.
    Relayed,
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

impl HandoffReason {
    /// Place in the queue of colleagues: lower is served first. Fraud and a lost card
    /// first (money can be leaving now), then a vulnerable customer, then everyone else
    /// (by waiting time within each).
    pub fn priority(self) -> i64 {
        match self {
            HandoffReason::FraudOrScam | HandoffReason::LostCard => 0,
            HandoffReason::VulnerableCustomer => 1,
            _ => 2,
        }
    }
}

/// Who answers a conversation now (the reply's `state`).
#[derive(
    utoipa::ToSchema,
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Default,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ConversationState {
    /// The assistant answers.
    #[default]
    Bot,
    /// Handed off: in the queue for a colleague; the assistant is silent.
    Waiting,
    /// A colleague has taken it over; the assistant is silent.
    WithAgent,
    /// A colleague resolved it.
    Closed,
}

impl ConversationState {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// A person owns the conversation: no assistant reply may be produced.
    pub fn is_human(self) -> bool {
        matches!(self, ConversationState::Waiting | ConversationState::WithAgent)
    }
}

/// How a colleague closed a conversation.
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
pub enum Outcome {
    Resolved,
    Referred,
    NoResponse,
    Duplicate,
}

/// Where a message a customer received came from (in its audit record).
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
pub enum Origin {
    /// The assistant.
    Bot,
    /// A suggested reply the colleague sent unchanged.
    AiSuggestion,
    /// A suggested reply the colleague edited before sending.
    AiSuggestionEdited,
    /// The colleague's own words.
    Agent,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        self.into()
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
        assert_eq!(ConversationState::WithAgent.as_str(), "with_agent");
        assert_eq!(
            serde_json::to_value(Origin::AiSuggestionEdited).unwrap(),
            "ai_suggestion_edited"
        );
        assert_eq!("no_response".parse::<Outcome>().unwrap(), Outcome::NoResponse);
    }

    #[test]
    fn scams_and_lost_cards_are_served_first_then_vulnerable_customers() {
        use HandoffReason::*;
        assert!(FraudOrScam.priority() == LostCard.priority());
        assert!(LostCard.priority() < VulnerableCustomer.priority());
        assert!(VulnerableCustomer.priority() < CustomerRequest.priority());
        assert_eq!(Complaint.priority(), CustomerRequest.priority());
    }
}
