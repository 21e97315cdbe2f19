"""Load generator and report for four frontends of one gpt-oss engine: the engine in-process (the
ceiling), our gRPC service, our OpenAI REST gateway, and `vllm serve`. See bench/README.md."""
