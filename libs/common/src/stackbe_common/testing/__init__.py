"""Test support shared by every service's tests (loaded as a pytest plugin)."""
