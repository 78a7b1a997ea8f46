"""Tests of the platform sandbox."""
