"""Moved to tests/support/service_process.py; this name stays for tests written in parallel branches."""

from tests.support.service_process import ROOT, ServiceProcess, running_service

__all__ = ["ROOT", "ServiceProcess", "running_service"]
