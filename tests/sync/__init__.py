"""Tests of dashboard/sync/."""
