"""gpt-oss gRPC inference service: vLLM engine, Harmony rendered and parsed server-side."""
