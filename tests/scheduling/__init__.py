"""Tests of scheduling: slots, the schedules file, beat and status."""
