"""Accounting: what a call cost (``pricing``), spend records and totals, metrics."""
