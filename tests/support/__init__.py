"""Test helpers: a scripted engine double and an in-thread server runner."""
