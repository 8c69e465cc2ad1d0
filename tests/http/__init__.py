"""Tests of dashboard/http/."""
