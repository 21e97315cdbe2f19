"""Generated gptoss.v1 stubs (scripts/gen_protos.py)."""
