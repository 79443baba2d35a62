"""The metadata services."""
