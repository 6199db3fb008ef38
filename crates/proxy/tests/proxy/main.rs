//! Integration tests of the proxy: against a scripted upstream (edge cases: slow, broken
//! streams, errors, huge bodies, patterns split across SSE chunks) and against a real
//! llama.cpp upstream (node-llama-cpp serving the demo model through an OpenAI-compatible
//! HTTP fixture, `tests/oracle/openai-server.mjs`).

mod real;
mod scripted;
mod support;
mod timeouts;
