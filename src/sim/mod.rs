//! Built-in simulated OpenAI-compatible server.
