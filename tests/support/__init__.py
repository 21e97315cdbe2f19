"""The one home of test helpers: spawning servers (a service subprocess, the service or the
gateway in a thread), the scripted engine double, ports, Prometheus scraping.

Spawning and waiting live here and in service.probes only; bench/ and scripts/ never import this.
"""
