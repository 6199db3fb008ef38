//! Request/response hotpatch proxy for OpenAI-compatible LLM servers (tokio).
