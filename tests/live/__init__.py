"""Tests of dashboard/live/."""
