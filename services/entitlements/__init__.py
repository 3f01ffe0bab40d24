"""Test-collection namespace: gives each tests/ package a unique module name."""
