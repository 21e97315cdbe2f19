"""Load generator and report for the frontends of one gpt-oss engine: the engine in-process (the
ceiling), our gRPC service, our OpenAI REST gateway, and the anchors (`vllm serve`, `vllm serve
--api-server-count N`, SMG on vLLM's gRPC server). See bench/README.md."""
