"""Tests of dashboard/studio/."""
