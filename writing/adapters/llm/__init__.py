"""The OpenAI-compatible LLM client (vLLM in production, llama.cpp on a CPU)."""
