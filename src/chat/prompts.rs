//! Prompt templates (minijinja), each with a name and a version that are recorded with
//! every answer. The templates in `prompts/` are built into the binary; a deployment can
//! point `TELLER_PROMPTS_DIR` at its own copy to change wording without a rebuild. Every
//! template is rendered once at start-up with sample values, so a broken template stops
//! the server before it takes traffic.

use super::decline::NO_ANSWER;
use crate::lang::Lang;
use anyhow::{bail, Context};
use minijinja::Environment;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The templates Teller needs, per language.
pub const TEMPLATE_NAMES: [&str; 11] = [
    "system",
    "answer",
    "condense",
    "refusal",
    "handoff",
    "fallback",
    "disclosure",
    "policy",
    "injection",
    "reminder",
    "uncertain",
];

#[derive(Debug, Deserialize)]
struct ManifestEntry {
    version: u32,
}

/// `name@version`, as recorded in the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplateRef {
    pub name: String,
    pub version: u32,
}

/// A passage as the answer template sees it.
#[derive(Debug, Clone, Serialize)]
pub struct PromptPassage {
    pub source_id: String,
    pub title: String,
    pub text: String,
}

/// Loaded, validated templates.
pub struct Prompts {
    env: Environment<'static>,
    versions: BTreeMap<String, u32>,
    bank_name: String,
}

/// The repository's `prompts/`, compiled in: (relative path, text).
const BUILT_IN: &[(&str, &str)] = &[
    ("prompts.toml", include_str!("../../prompts/prompts.toml")),
    ("en/system.j2", include_str!("../../prompts/en/system.j2")),
    ("en/answer.j2", include_str!("../../prompts/en/answer.j2")),
    ("en/condense.j2", include_str!("../../prompts/en/condense.j2")),
    ("en/refusal.j2", include_str!("../../prompts/en/refusal.j2")),
    ("en/handoff.j2", include_str!("../../prompts/en/handoff.j2")),
    ("en/fallback.j2", include_str!("../../prompts/en/fallback.j2")),
    ("en/disclosure.j2", include_str!("../../prompts/en/disclosure.j2")),
    ("en/policy.j2", include_str!("../../prompts/en/policy.j2")),
    ("en/injection.j2", include_str!("../../prompts/en/injection.j2")),
    ("en/reminder.j2", include_str!("../../prompts/en/reminder.j2")),
    ("en/uncertain.j2", include_str!("../../prompts/en/uncertain.j2")),
    ("zh-CN/system.j2", include_str!("../../prompts/zh-CN/system.j2")),
    ("zh-CN/answer.j2", include_str!("../../prompts/zh-CN/answer.j2")),
    ("zh-CN/condense.j2", include_str!("../../prompts/zh-CN/condense.j2")),
    ("zh-CN/refusal.j2", include_str!("../../prompts/zh-CN/refusal.j2")),
    ("zh-CN/handoff.j2", include_str!("../../prompts/zh-CN/handoff.j2")),
    ("zh-CN/fallback.j2", include_str!("../../prompts/zh-CN/fallback.j2")),
    ("zh-CN/disclosure.j2", include_str!("../../prompts/zh-CN/disclosure.j2")),
    ("zh-CN/policy.j2", include_str!("../../prompts/zh-CN/policy.j2")),
    ("zh-CN/injection.j2", include_str!("../../prompts/zh-CN/injection.j2")),
    ("zh-CN/reminder.j2", include_str!("../../prompts/zh-CN/reminder.j2")),
    ("zh-CN/uncertain.j2", include_str!("../../prompts/zh-CN/uncertain.j2")),
];

impl Prompts {
    /// The templates built into the binary.
    pub fn built_in(bank_name: &str) -> anyhow::Result<Self> {
        Self::from_source(
            |relative| {
                BUILT_IN
                    .iter()
                    .find(|(path, _)| *path == relative)
                    .map(|(_, text)| text.to_string())
                    .with_context(|| format!("no built-in template {relative}"))
            },
            "built-in prompts",
            bank_name,
        )
    }

    /// Templates from a folder laid out like the repository's `prompts/`.
    pub fn load(dir: &Path, bank_name: &str) -> anyhow::Result<Self> {
        Self::from_source(
            |relative| {
                let path = dir.join(relative);
                std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))
            },
            &dir.display().to_string(),
            bank_name,
        )
    }

    fn from_source(
        read: impl Fn(&str) -> anyhow::Result<String>,
        origin: &str,
        bank_name: &str,
    ) -> anyhow::Result<Self> {
        let manifest_path = format!("{origin}/prompts.toml");
        let manifest = read("prompts.toml")?;
        let manifest: BTreeMap<String, ManifestEntry> =
            toml::from_str(&manifest).with_context(|| format!("invalid {manifest_path}"))?;
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        // Passages and questions are plain text, not HTML.
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        let mut versions = BTreeMap::new();
        for name in TEMPLATE_NAMES {
            let Some(entry) = manifest.get(name) else {
                bail!("{manifest_path} has no entry for template {name:?}");
            };
            versions.insert(name.to_string(), entry.version);
            for lang in [Lang::En, Lang::ZhCn] {
                let relative = format!("{}/{name}.j2", lang.as_str());
                let source = read(&relative)?;
                env.add_template_owned(key(name, lang), source)
                    .with_context(|| format!("template {origin}/{relative} does not compile"))?;
            }
        }
        let prompts = Self {
            env,
            versions,
            bank_name: bank_name.to_string(),
        };
        prompts.check()?;
        Ok(prompts)
    }

    /// Renders every template with sample values, so errors surface at start-up.
    fn check(&self) -> anyhow::Result<()> {
        let passages = vec![PromptPassage {
            source_id: "s".into(),
            title: "t".into(),
            text: "x".into(),
        }];
        for lang in [Lang::En, Lang::ZhCn] {
            self.answer(lang, &passages, "q")?;
            self.condense(lang, &[("user".into(), "a".into())], "b")?;
            for name in [
                "system",
                "refusal",
                "fallback",
                "disclosure",
                "policy",
                "injection",
                "reminder",
                "uncertain",
            ] {
                self.text(name, lang)?;
            }
            for reason in crate::conversation::HandoffReason::ALL {
                self.handoff(lang, reason)?;
            }
        }
        Ok(())
    }

    fn render(&self, name: &str, lang: Lang, ctx: minijinja::Value) -> anyhow::Result<String> {
        let template = self.env.get_template(&key(name, lang))?;
        Ok(template
            .render(ctx)
            .with_context(|| format!("template {name} ({lang}) failed to render"))?
            .trim()
            .to_string())
    }

    /// A template that needs only the bank name (system, refusal, handoff, ...). The
    /// system prompt also gets `no_answer`, the reply that declines.
    pub fn text(&self, name: &str, lang: Lang) -> anyhow::Result<String> {
        self.render(
            name,
            lang,
            minijinja::context! { bank_name => self.bank_name, no_answer => NO_ANSWER },
        )
    }

    /// The handoff message, worded for the reason.
    pub fn handoff(&self, lang: Lang, reason: crate::conversation::HandoffReason) -> anyhow::Result<String> {
        self.render(
            "handoff",
            lang,
            minijinja::context! { bank_name => self.bank_name, reason => reason.as_str() },
        )
    }

    pub fn answer(&self, lang: Lang, passages: &[PromptPassage], question: &str) -> anyhow::Result<String> {
        self.render(
            "answer",
            lang,
            minijinja::context! { bank_name => self.bank_name, passages, question },
        )
    }

    pub fn condense(&self, lang: Lang, history: &[(String, String)], message: &str) -> anyhow::Result<String> {
        let history: Vec<_> = history
            .iter()
            .map(|(role, content)| minijinja::context! { role, content })
            .collect();
        self.render(
            "condense",
            lang,
            minijinja::context! { bank_name => self.bank_name, history, message },
        )
    }

    pub fn reference(&self, name: &str) -> TemplateRef {
        TemplateRef {
            name: name.to_string(),
            version: self.versions.get(name).copied().unwrap_or_default(),
        }
    }
}

fn key(name: &str, lang: Lang) -> String {
    format!("{}/{name}", lang.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_prompts() -> Prompts {
        Prompts::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts"), "Lantern Bank").unwrap()
    }

    #[test]
    fn shipped_templates_load_and_render() {
        let prompts = repo_prompts();
        let passages = vec![
            PromptPassage {
                source_id: "faq-1".into(),
                title: "Fees".into(),
                text: "Fee is <b>LTD 5</b>.".into(),
            },
            PromptPassage {
                source_id: "doc-2".into(),
                title: "Limits".into(),
                text: "Limit is LTD 10.".into(),
            },
        ];
        let answer = prompts.answer(Lang::En, &passages, "what fee?").unwrap();
        assert!(
            answer.contains("<passage n=\"1\" source=\"faq-1\" title=\"Fees\">\nFee is <b>LTD 5</b>."),
            "{answer}"
        );
        assert!(answer.contains("<passage n=\"2\""));
        assert!(answer.ends_with("Customer question: what fee?"));
        assert!(prompts.text("system", Lang::ZhCn).unwrap().contains("Lantern Bank"));
        assert_eq!(
            prompts.reference("answer"),
            TemplateRef {
                name: "answer".into(),
                version: 1
            }
        );
    }

    #[test]
    fn a_broken_template_fails_loading() {
        let dir = tempfile::TempDir::new().unwrap();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts");
        for sub in ["", "en", "zh-CN"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        std::fs::copy(src.join("prompts.toml"), dir.path().join("prompts.toml")).unwrap();
        for lang in ["en", "zh-CN"] {
            for name in TEMPLATE_NAMES {
                std::fs::copy(
                    src.join(lang).join(format!("{name}.j2")),
                    dir.path().join(lang).join(format!("{name}.j2")),
                )
                .unwrap();
            }
        }
        std::fs::write(dir.path().join("zh-CN/answer.j2"), "{{ passages | nosuchfilter }}").unwrap();
        let err = Prompts::load(dir.path(), "Bank")
            .err()
            .expect("broken template rejected");
        assert!(format!("{err:#}").contains("answer"), "{err:#}");
    }
}
