"""The cluster services."""
