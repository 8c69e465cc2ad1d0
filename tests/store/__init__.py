"""Tests of dashboard/store/."""
