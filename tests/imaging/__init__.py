"""Tests of dashboard/imaging/."""
