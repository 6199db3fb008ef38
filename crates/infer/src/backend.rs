//! What a server needs from the engine, behind one trait (the HTTP side lives in the proxy
//! crate, which has tokio): the model's name, its chat template, and a completion that
//! streams tokens. Implemented for a plain [`Instance`] (`hotpatch serve --model`) and for a
//! [`SessionEngine`]'s edited side (the studio serving the model being edited).

use parking_lot::Mutex;

use crate::error::{InferError, Result};
use crate::instance::{GenOptions, Generation, Instance, Step};
use crate::session::{SessionEngine, Side};

/// Something that completes prompts.
pub trait Generate: Send {
    /// A name for the model (its file name).
    fn model_id(&mut self) -> Result<String>;
    /// Formats a chat with the model's own template (assistant turn opened).
    fn chat_prompt(&mut self, messages: &[(String, String)]) -> Result<String>;
    /// Completes `prompt` (text; special-token text is parsed), streaming each token.
    fn complete(
        &mut self,
        prompt: &str,
        options: &GenOptions,
        on_step: &mut dyn FnMut(&Step) -> bool,
    ) -> Result<Generation>;
}

fn file_id(p: &std::path::Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

impl Generate for Instance {
    fn model_id(&mut self) -> Result<String> {
        Ok(file_id(self.model().path()))
    }
    fn chat_prompt(&mut self, messages: &[(String, String)]) -> Result<String> {
        Instance::chat_prompt(self, messages)
    }
    fn complete(
        &mut self,
        prompt: &str,
        options: &GenOptions,
        on_step: &mut dyn FnMut(&Step) -> bool,
    ) -> Result<Generation> {
        let tokens = self.tokenize_prompt(prompt)?;
        self.generate(&tokens, options, on_step)
    }
}

impl Generate for SessionEngine {
    fn model_id(&mut self) -> Result<String> {
        Ok(file_id(self.path()))
    }
    fn chat_prompt(&mut self, messages: &[(String, String)]) -> Result<String> {
        self.instance(Side::Edited)?.chat_prompt(messages)
    }
    fn complete(
        &mut self,
        prompt: &str,
        options: &GenOptions,
        on_step: &mut dyn FnMut(&Step) -> bool,
    ) -> Result<Generation> {
        let tokens = self.instance(Side::Edited)?.tokenize_prompt(prompt)?;
        self.generate(Side::Edited, &tokens, options, on_step)
    }
}

impl<T: Generate> Generate for Option<T> {
    fn model_id(&mut self) -> Result<String> {
        self.as_mut().ok_or_else(no_model)?.model_id()
    }
    fn chat_prompt(&mut self, messages: &[(String, String)]) -> Result<String> {
        self.as_mut().ok_or_else(no_model)?.chat_prompt(messages)
    }
    fn complete(
        &mut self,
        prompt: &str,
        options: &GenOptions,
        on_step: &mut dyn FnMut(&Step) -> bool,
    ) -> Result<Generation> {
        self.as_mut()
            .ok_or_else(no_model)?
            .complete(prompt, options, on_step)
    }
}

fn no_model() -> InferError {
    InferError::Invalid {
        what: "model",
        message: "no model is loaded in the engine".into(),
    }
}

/// A shared engine a server calls from its worker threads, one request at a time.
pub trait Backend: Send + Sync {
    /// See [`Generate::model_id`].
    fn model_id(&self) -> Result<String>;
    /// See [`Generate::chat_prompt`].
    fn chat_prompt(&self, messages: &[(String, String)]) -> Result<String>;
    /// See [`Generate::complete`].
    fn complete(
        &self,
        prompt: &str,
        options: &GenOptions,
        on_step: &mut dyn FnMut(&Step) -> bool,
    ) -> Result<Generation>;
}

impl<T: Generate> Backend for Mutex<T> {
    fn model_id(&self) -> Result<String> {
        self.lock().model_id()
    }
    fn chat_prompt(&self, messages: &[(String, String)]) -> Result<String> {
        self.lock().chat_prompt(messages)
    }
    fn complete(
        &self,
        prompt: &str,
        options: &GenOptions,
        on_step: &mut dyn FnMut(&Step) -> bool,
    ) -> Result<Generation> {
        self.lock().complete(prompt, options, on_step)
    }
}
