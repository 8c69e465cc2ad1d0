"""Tests of dashboard/auth/."""
