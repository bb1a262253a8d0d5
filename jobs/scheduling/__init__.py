"""Scheduling: the schedules file, the slots of each cron, beat and the status people see."""
